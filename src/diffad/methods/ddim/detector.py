"""``ddim``: DDIM reconstruction distance, in pretrained features and pixels
(:mod:`diffad.methods.ddim.reconstruction`). Nothing of its own is fitted: it is built from the denoiser
and the backbone (``ddim``)."""

from __future__ import annotations

import numpy as np

from diffad.components.detector import Batch, Detector, MethodOutput
from diffad.components.methods import register


@register
class DDIM(Detector):
    name = "ddim"
    fits_on = "denoiser"
    model_files = ("denoiser.safetensors",)
    order = 30

    def __init__(self, reconstruction) -> None:
        self.reconstruction = reconstruction

    @classmethod
    def load(cls, models) -> DDIM:
        from diffad.components.backbone import FeatureExtractor
        from diffad.methods.ddim.reconstruction import DDIMDetector

        cfg = models.params.ddim
        extractor = FeatureExtractor(blocks=cfg.feature_blocks).to(models.device)
        return cls(DDIMDetector(models.denoiser(), extractor, cfg, models.device))

    def score(self, batch: Batch) -> MethodOutput:
        scores, maps, _ = self.reconstruction.score(batch.images)
        return MethodOutput(np.asarray(scores, np.float64), np.asarray(maps, np.float32))
