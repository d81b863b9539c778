"""``msma_gmm``: -log p of an image's multiscale score norms (N, L) under the Gaussian mixture.

Fitted by `fit_gmm` on the cached norms of the good training images (:mod:`diffad.msma.mixture`);
image scores only, no map.
"""

from __future__ import annotations

import numpy as np

from diffad.detectors.base import Batch, Detector, MethodOutput, register


@register
class MsmaGmm(Detector):
    name = "msma_gmm"
    fits_on = "score_norms"
    model_files = ("denoiser.safetensors", "gmm.json")
    has_map = False
    order = 10

    def __init__(self, gmm) -> None:
        self.gmm = gmm

    @classmethod
    def load(cls, models) -> MsmaGmm:
        from diffad.msma.mixture import GMMModel

        return cls(GMMModel.load(models.file("gmm.json")))

    def score(self, batch: Batch) -> MethodOutput:
        image_norms, _ = batch.score_norms()
        return MethodOutput(self.gmm.score(image_norms.astype(np.float64)), None)
