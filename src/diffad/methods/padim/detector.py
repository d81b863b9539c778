"""``padim``: per-position Gaussian of good patch features, Mahalanobis distance
(:mod:`diffad.methods.padim.model`), fitted on the good training images."""

from __future__ import annotations

from diffad.components.backbone_detector import BackboneDetector
from diffad.components.methods import register


@register
class PaDiMDetector(BackboneDetector):
    name = "padim"
    model_files = ("padim.safetensors",)
    order = 70

    @classmethod
    def model_type(cls):
        from diffad.methods.padim.model import PaDiM

        return PaDiM
