"""Settings of ``padim`` (on the ``backbone`` features)."""

from __future__ import annotations

from dataclasses import dataclass

from diffad.core.typed_yaml import Section, setting


@dataclass(frozen=True)
class PadimSettings(Section):
    """PaDiM's Gaussians per position."""

    key = "padim"
    dims: int = setting(100, "random channel subset (all channels if fewer)", 1, 1_000_000)
    blur_sigma: float = setting(4.0, "map smoothing, pixels at 256 px", 0.0, 100.0)
