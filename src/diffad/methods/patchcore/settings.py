"""Settings of ``patchcore`` (on the ``backbone`` features)."""

from __future__ import annotations

from dataclasses import dataclass

from diffad.core.typed_yaml import Section, setting


@dataclass(frozen=True)
class PatchCoreSettings(Section):
    """PatchCore's memory bank and image score."""

    key = "patchcore"
    coreset_ratio: float = setting(0.01, "memory bank fraction (greedy k-center; paper: 1% ~ 25%)", 1e-4, 1.0)
    projection_dim: int = setting(
        128, "random projection for coreset selection if wider; 0 = never", 0, 1_000_000
    )
    num_neighbors: int = setting(1, "image score re-weighting neighbours (<= 1: plain max)", 1, 10_000)
    blur_sigma: float = setting(4.0, "map smoothing, pixels at 256 px", 0.0, 100.0)
