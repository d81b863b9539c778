"""``patchcore``: nearest-neighbour distance of each patch to a coreset memory bank of good patch
features (:mod:`diffad.methods.patchcore.model`), fitted on the good training images."""

from __future__ import annotations

from diffad.components.backbone_detector import BackboneDetector
from diffad.components.methods import register


@register
class PatchCoreDetector(BackboneDetector):
    name = "patchcore"
    model_files = ("patchcore.safetensors",)
    order = 60

    @classmethod
    def model_type(cls):
        from diffad.methods.patchcore.model import PatchCore

        return PatchCore
