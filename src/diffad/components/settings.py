"""Settings of the shared parts (torch-free): the MSMA score norms and the pretrained backbone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from diffad.core.errors import ConfigError, check_range
from diffad.core.typed_yaml import Section, setting


@dataclass(frozen=True)
class ScoreNormSettings(Section):
    """`score_norms`: multiscale score norms ||D(x; sigma_i) - c_skip(sigma_i) x|| of every image
    (msma_gmm and msma_flow are fitted on them)."""

    key = "score_norms"
    num_sigmas: int = setting(
        20, "L noise levels, Karras (rho) spacing from sigma_max down to sigma_min", 2, 1000
    )
    sigma_min: float = setting(0.1, "", 1e-5, 1e4)
    sigma_max: float = setting(64.0, "", 1e-5, 1e4)
    input: Literal["clean", "noised"] = setting(
        "clean", "clean image (reference) | noised: mean D(x + sigma n) - c_skip x"
    )
    noise_draws: int = setting(1, "noised input: draws averaged per level", 1, 1000)
    patch_window: int = setting(3, "local window of the per-patch norm, pixels", 1, 64)
    patch_stride: int = setting(2, "the patch map is H/stride x W/stride", 1, 64)
    batch_size: int = setting(64, "", 1, 65536)
    rho: float = setting(7.0, "Karras spacing exponent", 0.1, 100.0)
    bf16: bool = setting(True, "CUDA only: bf16 autocast of the denoiser (norms always summed in float32)")

    def check(self) -> None:
        check_range("score_norms.sigma_min", self.sigma_min, 1e-5, self.sigma_max)


@dataclass(frozen=True)
class BackboneSettings(Section):
    """The pretrained EfficientNet-Lite0 whose patch features patchcore, padim and msma_features
    are fitted on."""

    key = "backbone"
    feature_blocks: tuple[int, ...] = setting(
        (1, 2), "blocks 0..6, increasing, concatenated ([1, 2]: strides 4, 8)"
    )
    input_size: int = setting(256, "the backbone's input side: images are resized to it", 32, 4096)
    border_pad: int = setting(
        32, "reflect padding (px at input_size) cropped off the features: no bright frame; 0 = zeros", 0, 1024
    )
    batch_size: int = setting(
        8, "images per backbone batch (peak memory ~ batch; raise it on a GPU)", 1, 65536
    )

    def check(self) -> None:
        if not self.feature_blocks or any(not 0 <= b <= 6 for b in self.feature_blocks):
            raise ConfigError(f"backbone.feature_blocks: {self.feature_blocks!r} needs values in 0..6")
        if list(self.feature_blocks) != sorted(set(self.feature_blocks)):
            raise ConfigError(f"backbone.feature_blocks: {self.feature_blocks!r} must be increasing")
        if self.border_pad >= self.input_size:
            raise ConfigError(
                f"backbone.border_pad: {self.border_pad} must be below input_size {self.input_size}"
            )
