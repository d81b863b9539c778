"""PatchFlow: a position-conditioned normalizing flow over per-patch MSMA score norms."""

from diffad.msma.patchflow.model import PatchFlow, load_patchflow, save_patchflow
from diffad.msma.patchflow.position import positional_encoding_2d
from diffad.msma.patchflow.training import TrainFlowResult, image_scores_from_nll, patch_nll, train_patchflow

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
