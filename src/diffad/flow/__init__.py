"""PatchFlow: a position-conditioned normalizing flow over per-patch MSMA score norms."""

from diffad.flow.patchflow import PatchFlow, load_patchflow, save_patchflow
from diffad.flow.position import positional_encoding_2d
from diffad.flow.training import TrainFlowResult, image_scores_from_nll, patch_nll, train_patchflow

__all__ = [
    "PatchFlow",
    "TrainFlowResult",
    "image_scores_from_nll",
    "load_patchflow",
    "patch_nll",
    "positional_encoding_2d",
    "save_patchflow",
    "train_patchflow",
]
