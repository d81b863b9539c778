"""``msma_flow``: the PatchFlow's per-patch -log p of the score norms (N, L, h, w) is the map,
upsampled to the image; the image score is the mean of its top-k patches (``evaluate.flow_topk``).

Fitted by `train_flow` on the cached norms of the good training images (:mod:`diffad.msma.patchflow`).
"""

from __future__ import annotations

import numpy as np

from diffad.detectors.base import Batch, Detector, MethodOutput, register


@register
class MsmaFlow(Detector):
    name = "msma_flow"
    fits_on = "score_norms"
    model_files = ("denoiser.safetensors", "flow.safetensors")
    order = 20

    def __init__(self, flow, device, topk: int) -> None:
        self.flow, self.device, self.topk = flow, device, topk

    @classmethod
    def load(cls, models) -> MsmaFlow:
        from diffad.msma.patchflow.model import load_patchflow

        flow = load_patchflow(models.file("flow.safetensors"), models.device)
        return cls(flow, models.device, models.params.evaluate.flow_topk)

    def score(self, batch: Batch) -> MethodOutput:
        import torch

        from diffad.maps import resize_maps
        from diffad.msma.patchflow import image_scores_from_nll, patch_nll

        _, patch_norms = batch.score_norms()
        resolution = batch.images.shape[-1]
        nll = patch_nll(self.flow, patch_norms.astype(np.float32), device=self.device, batch_size=64)
        maps = resize_maps(torch.from_numpy(nll).float(), (resolution, resolution)).numpy()
        return MethodOutput(image_scores_from_nll(nll, how="topk_mean", k=self.topk), maps)
