"""``msma_gmm``: -log p of an image's multiscale score norms (N, L) under a Gaussian mixture.

Fitted by `fit@msma_gmm` on the cached norms of the good training images (:mod:`.mixture`);
image scores only, no map.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffad.components.detector import Batch, MethodOutput, NormsDetector
from diffad.components.methods import register


@register
class MsmaGmm(NormsDetector):
    name = "msma_gmm"
    model_files = ("denoiser.safetensors", "gmm.json")
    has_map = False
    order = 10

    def __init__(self, gmm) -> None:
        self.gmm = gmm

    @classmethod
    def fit(cls, image_norms: np.ndarray, patch_norms: np.ndarray, models, seed: int) -> MsmaGmm:
        from diffad.methods.msma_gmm.mixture import fit_gmm

        return cls(fit_gmm(image_norms, models.params.msma_gmm, seed))

    @classmethod
    def load(cls, models) -> MsmaGmm:
        from diffad.methods.msma_gmm.mixture import GMMModel

        return cls(GMMModel.load(models.file("gmm.json")))

    def save(self, folder: Path) -> None:
        self.gmm.save(Path(folder) / "gmm.json")

    def score(self, batch: Batch) -> MethodOutput:
        image_norms, _ = batch.score_norms()
        return MethodOutput(self.gmm.score(image_norms.astype(np.float64)), None)
