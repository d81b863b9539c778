"""Every method behind one interface: images -> image scores (N,) and anomaly maps (N, H, W).

The same scorers serve `evaluate` and `predict`, so a bundle scores an image exactly as the
evaluation did (pre- and post-processing live here, not in the callers).

Methods:
    msma_gmm   -log p of the per-image score norms under the Gaussian mixture (no map)
    msma_flow  PatchFlow per-patch -log p, upsampled to the image; image score = top-k mean
    ddim       DDIM reconstruction distance (features + pixels)
    ensemble   msma_gmm/msma_flow/ddim, each standardised by its statistics on good images, averaged
    fused      diffusion + feature maps, weights chosen on synthetic defects (evaluation/fusion.py)
    patchcore  nearest-neighbour patch distance to a coreset memory bank
    padim      per-position Gaussian, Mahalanobis distance
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from diffad.config import METHODS
from diffad.maps import resize_maps

__all__ = ["METHODS", "MethodOutput", "Standardizer", "ensemble_output", "msma_outputs"]
MSMA_METHODS = ("msma_gmm", "msma_flow")
ENSEMBLE_PARTS = ("msma_gmm", "msma_flow", "ddim")  # image scores combined
ENSEMBLE_MAP_PARTS = ("msma_flow", "ddim")  # maps combined


@dataclass
class MethodOutput:
    """Scores of one method on a set of images, in input order."""

    scores: np.ndarray  # (N,) float, larger = more anomalous
    maps: np.ndarray | None  # (N, H, W) float32 at the image resolution, or None (msma_gmm)

    def subset(self, index: np.ndarray) -> MethodOutput:
        return MethodOutput(self.scores[index], None if self.maps is None else self.maps[index])


@dataclass(frozen=True)
class Standardizer:
    """(x - mean) / std with the statistics of good images: puts methods on one scale."""

    image_mean: float
    image_std: float
    map_mean: float
    map_std: float

    @classmethod
    def fit(cls, good: MethodOutput) -> Standardizer:
        maps = good.maps if good.maps is not None else np.zeros(1, np.float32)
        return cls(
            float(good.scores.mean()),
            float(good.scores.std() + 1e-8),
            float(maps.mean()),
            float(maps.std() + 1e-8),
        )

    def scores(self, scores: np.ndarray) -> np.ndarray:
        return (scores - self.image_mean) / self.image_std

    def maps(self, maps: np.ndarray) -> np.ndarray:
        return (maps - self.map_mean) / self.map_std

    def to_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def msma_outputs(
    image_norms: np.ndarray,
    patch_norms: np.ndarray,
    gmm,
    flow,
    *,
    resolution: int,
    device: torch.device,
    topk: int,
) -> dict[str, MethodOutput]:
    """msma_gmm and msma_flow from score norms (N, L) and (N, L, h, w)."""
    from diffad.flow import image_scores_from_nll, patch_nll

    nll = patch_nll(flow, patch_norms.astype(np.float32), device=device, batch_size=64)  # (N, h, w)
    maps = resize_maps(torch.from_numpy(nll).float(), (resolution, resolution)).numpy()
    return {
        "msma_gmm": MethodOutput(gmm.score(image_norms.astype(np.float64)), None),
        "msma_flow": MethodOutput(image_scores_from_nll(nll, how="topk_mean", k=topk), maps),
    }


def ensemble_output(parts: dict[str, MethodOutput], standardizers: dict[str, Standardizer]) -> MethodOutput:
    """Average of the standardised image scores and maps of the ensemble's parts."""
    scores = np.mean([standardizers[m].scores(parts[m].scores) for m in ENSEMBLE_PARTS], axis=0)
    maps = np.mean([standardizers[m].maps(parts[m].maps) for m in ENSEMBLE_MAP_PARTS], axis=0)
    return MethodOutput(scores, maps.astype(np.float32))
