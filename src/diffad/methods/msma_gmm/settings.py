"""Settings of ``msma_gmm``: the Gaussian mixture over per-image score norms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from diffad.core.errors import ConfigError
from diffad.core.typed_yaml import Section, setting


@dataclass(frozen=True)
class MsmaGmmSettings(Section):
    """Gaussian mixture over the per-image score norms of the good training images."""

    key = "msma_gmm"
    n_components: int = setting(7, "", 1, 1000)
    covariance: Literal["full", "diag"] = setting("full", "full | diag")
    search: bool = setting(False, "true: pick n_components by cross-validated held-out likelihood")
    search_components: tuple[int, ...] = setting((2, 3, 4, 5, 6, 7, 8, 9, 10), "")
    cv_folds: int = setting(5, "", 2, 100)
    reg_covar: float = setting(
        1e-3, "added to covariance diagonals, in scaled units (sklearn's 1e-6 overfits)", 0.0, 1.0
    )
    features: Literal["raw", "log"] = setting("raw", "raw norms (reference) | log")

    def check(self) -> None:
        if not self.search_components or min(self.search_components) < 1:
            raise ConfigError(f"msma_gmm.search_components: {self.search_components!r} needs values >= 1")
