"""Settings of ``fused``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from diffad.core.typed_yaml import Section, setting


@dataclass(frozen=True)
class FusedSettings(Section):
    """The fusion of diffusion and feature-memory maps (weights fitted on calibration images)."""

    key = "fused"
    image_score: Literal["weighted", "map_max"] = setting(
        "map_max", "max of the fused map | weighted (the parts' image scores)"
    )
