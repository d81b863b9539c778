"""``padim``: per-position Gaussian of good patch features, Mahalanobis distance
(:mod:`diffad.baselines.padim`), fitted on the good training images."""

from __future__ import annotations

from diffad.detectors._baseline import BaselineDetector
from diffad.detectors.base import register


@register
class PaDiMDetector(BaselineDetector):
    name = "padim"
    model_files = ("padim.safetensors",)
    order = 70

    @classmethod
    def model_type(cls):
        from diffad.baselines.padim import PaDiM

        return PaDiM
