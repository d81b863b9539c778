"""``msma_features``: MSMA score norms of a diffusion model trained on the backbone's patch
features (:mod:`.model`), fitted on the good training images by `fit@msma_features` on the
shared patch embedding; the map is the mean standardised norm per cell, the image score its max."""

from __future__ import annotations

from diffad.components.backbone_detector import BackboneDetector
from diffad.components.methods import register


@register
class MsmaFeatures(BackboneDetector):
    name = "msma_features"
    model_files = ("msma_features.safetensors",)
    order = 25

    @classmethod
    def model_type(cls):
        from diffad.methods.msma_features.model import FeatureMsma

        return FeatureMsma

    def training_history(self) -> list[dict[str, float]]:
        return [{"step": step, "loss": loss} for step, loss in enumerate(self.model.losses, start=1)]
