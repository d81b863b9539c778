"""``patchcore``: nearest-neighbour distance of each patch to a coreset memory bank of good patch
features (:mod:`diffad.baselines.patchcore`), fitted on the good training images."""

from __future__ import annotations

from diffad.detectors._baseline import BaselineDetector
from diffad.detectors.base import register


@register
class PatchCoreDetector(BaselineDetector):
    name = "patchcore"
    model_files = ("patchcore.safetensors",)
    order = 60

    @classmethod
    def model_type(cls):
        from diffad.baselines.patchcore import PatchCore

        return PatchCore
