"""Settings of ``ddim``: the DDIM reconstruction detector (DDAD-style guidance)."""

from __future__ import annotations

from dataclasses import dataclass

from diffad.core.errors import ConfigError
from diffad.core.typed_yaml import Section, setting


@dataclass(frozen=True)
class DdimSettings(Section):
    """DDIM reconstruction of each image by the pixel denoiser; distance in features and pixels."""

    key = "ddim"
    sigma_start: float = setting(0.5, "noise level the test image is pushed to (VE sigma)", 1e-3, 100.0)
    steps: int = setting(10, "deterministic DDIM steps from sigma_start to 0", 1, 1000)
    eta: float = setting(0.0, "0 = deterministic; 1 = DDPM-like fresh noise each step", 0.0, 1.0)
    guidance: float = setting(1.0, "DDAD's w: pull toward the noised input", 0.0, 100.0)
    feature_blocks: tuple[int, ...] = setting((1, 2), "EfficientNet-Lite0 blocks compared (strides 4, 8)")
    pixel_weight: float = setting(1.0, "DDAD's v in A = D_f + v r D_p", 0.0, 1000.0)
    feature_size: int = setting(
        0, "backbone input side; 0 = as the denoiser reads them (train_denoiser.resolution)", 0, 4096
    )
    pixel_scale: float = setting(
        2.0, "r: fixed pixel-vs-feature weight; 0 = max D_f / max D_p per image", 0.0, 1e6
    )
    blur_sigma: float = setting(4.0, "map smoothing, pixels at 256 px", 0.0, 100.0)
    tile: bool = setting(False, "larger images: score a grid of tiles")
    batch_size: int = setting(16, "images (or tiles) reconstructed at once", 1, 65536)

    def check(self) -> None:
        if not self.feature_blocks or any(not 0 <= b <= 6 for b in self.feature_blocks):
            raise ConfigError(f"ddim.feature_blocks: {self.feature_blocks!r} needs values in 0..6")
