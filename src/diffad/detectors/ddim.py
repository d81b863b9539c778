"""``ddim``: DDIM reconstruction distance, in pretrained features and pixels
(:mod:`diffad.diffusion.detector`). Nothing of its own is fitted: it is built from the denoiser
and the backbone (``evaluate.ddim``)."""

from __future__ import annotations

import numpy as np

from diffad.detectors.base import Batch, Detector, MethodOutput, register


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
        from diffad.diffusion.detector import DDIMDetector
        from diffad.features.backbone import FeatureExtractor

        cfg = models.params.evaluate.ddim
        extractor = FeatureExtractor(blocks=cfg.feature_blocks).to(models.device)
        return cls(DDIMDetector(models.denoiser(), extractor, cfg, models.device))

    def score(self, batch: Batch) -> MethodOutput:
        scores, maps, _ = self.reconstruction.score(batch.images)
        return MethodOutput(np.asarray(scores, np.float64), np.asarray(maps, np.float32))
