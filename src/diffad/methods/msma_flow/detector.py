"""``msma_flow``: the PatchFlow's per-patch -log p of the score norms (N, L, h, w) is the map,
upsampled to the image; the image score is the mean of its top-k patches (``msma_flow.topk``).

Fitted by `fit@msma_flow` on the cached norms of the good training images (:mod:`.training`);
its per-epoch NLLs are its training history (`fit@msma_flow` writes them for `dvc plots`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from diffad.components.detector import Batch, MethodOutput, NormsDetector
from diffad.components.methods import register

log = logging.getLogger("diffad.msma_flow")


@register
class MsmaFlow(NormsDetector):
    name = "msma_flow"
    model_files = ("denoiser.safetensors", "flow.safetensors")
    order = 20

    def __init__(self, flow, device, topk: int, history: list[dict] | None = None) -> None:
        self.flow, self.device, self.topk = flow, device, topk
        self.history = history or []  # per epoch: epoch, train_nll, val_nll

    @classmethod
    def fit(cls, image_norms: np.ndarray, patch_norms: np.ndarray, models, seed: int) -> MsmaFlow:
        from diffad.methods.msma_flow.training import train_patchflow

        settings = models.params.msma_flow
        result = train_patchflow(
            patch_norms.astype("float32"), settings, seed=seed, device=models.device, log=log.info
        )
        log.info(
            "best epoch %d, NLL %.4f nats/dim, %.1f s", result.best_epoch, result.best_nll, result.seconds
        )
        return cls(result.model, models.device, settings.topk, result.history)

    def save(self, folder: Path) -> None:
        from diffad.methods.msma_flow.model import save_patchflow

        save_patchflow(self.flow, Path(folder) / "flow.safetensors")

    def training_history(self) -> list[dict[str, float]]:
        return self.history

    @classmethod
    def load(cls, models) -> MsmaFlow:
        from diffad.methods.msma_flow.model import load_patchflow

        flow = load_patchflow(models.file("flow.safetensors"), models.device)
        return cls(flow, models.device, models.params.msma_flow.topk)

    def score(self, batch: Batch) -> MethodOutput:
        import torch

        from diffad.core.maps import resize_maps
        from diffad.methods.msma_flow.training import image_scores_from_nll, patch_nll

        _, patch_norms = batch.score_norms()
        resolution = batch.images.shape[-1]
        nll = patch_nll(self.flow, patch_norms.astype(np.float32), device=self.device, batch_size=64)
        maps = resize_maps(torch.from_numpy(nll).float(), (resolution, resolution)).numpy()
        return MethodOutput(image_scores_from_nll(nll, how="topk_mean", k=self.topk), maps)
