"""Settings of ``msma_features``: an EDM denoiser on the backbone's patch features."""

from __future__ import annotations

from dataclasses import dataclass

from diffad.core.errors import ConfigError, check_range
from diffad.core.typed_yaml import Section, setting


@dataclass(frozen=True)
class MsmaFeaturesSettings(Section):
    """An EDM denoiser on the backbone's patch features (``backbone``); MSMA score norms per cell."""

    key = "msma_features"
    hidden: int = setting(256, "per-cell network width (1 x 1 convolutions), a multiple of 8", 8, 65536)
    blocks: int = setting(2, "residual blocks", 0, 64)
    steps: int = setting(1000, "Adam steps (about 1-2 min on one CPU thread)", 1, 10_000_000)
    batch_cells: int = setting(2048, "feature cells per step", 1, 10_000_000)
    lr: float = setting(2e-3, "peak learning rate (5 % warm-up, cosine decay)", 1e-8, 1.0)
    p_mean: float = setting(
        -1.0, "training ln sigma ~ N(p_mean, p_std^2); features standardised (sigma_data 1)", -10.0, 10.0
    )
    p_std: float = setting(1.0, "", 1e-3, 10.0)
    sigma_min: float = setting(0.1, "score-norm levels, geometric", 1e-4, 1e4)
    sigma_max: float = setting(1.0, "", 1e-4, 1e4)
    num_sigmas: int = setting(6, "", 1, 1000)
    blur_sigma: float = setting(4.0, "map smoothing, pixels at 256 px", 0.0, 100.0)

    def check(self) -> None:
        if self.hidden % 8:
            raise ConfigError(f"msma_features.hidden: {self.hidden} is not a multiple of 8")
        check_range("msma_features.sigma_max", self.sigma_max, self.sigma_min, 1e4)
