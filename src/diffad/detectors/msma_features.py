"""``msma_features``: MSMA score norms of a diffusion model trained on the backbone's patch
features (:mod:`diffad.msma.features`), fitted on the good training images in `fit_baselines` on
the baselines' embedding; the map is the mean standardised norm per cell, the image score its max."""

from __future__ import annotations

from diffad.detectors._baseline import BaselineDetector
from diffad.detectors.base import register


@register
class MsmaFeatures(BaselineDetector):
    name = "msma_features"
    model_files = ("msma_features.safetensors",)
    order = 25

    @classmethod
    def model_type(cls):
        from diffad.msma.features import FeatureMsma

        return FeatureMsma
