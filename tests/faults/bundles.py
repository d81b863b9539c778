"""A real (tiny) model bundle for the integrity tests: PaDiM on six 16 px noise images.

Built through the same writer `evaluate` uses (:func:`diffad.inference.bundle.write_bundle`), so
the tests read what the pipeline writes; PaDiM because it fits in seconds on the CPU.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from diffad.components.detector import Calibration, Standardizer
from diffad.config import params_from_dict
from diffad.evaluation.settings import EvaluateSettings
from diffad.evaluation.thresholds import fit_thresholds
from diffad.inference.bundle import write_bundle
from diffad.inference.models import Models
from diffad.methods.padim.detector import PaDiMDetector

RESOLUTION = 16


def images(seed: int, n: int = 6) -> torch.Tensor:
    """(n, 3, 16, 16) in [-1, 1]."""
    return torch.rand(n, 3, RESOLUTION, RESOLUTION, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def fitted_models(folder: Path, seed: int) -> Models:
    """A PaDiM fitted on ``images(seed)``, saved in ``folder``."""
    params = params_from_dict(
        {
            "data": {"category": "tiny", "resolution": RESOLUTION},
            "train_denoiser": {"resolution": RESOLUTION},
            "runtime": {"threads": 1},
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    blank = Models(params=params, paths={}, device=torch.device("cpu"))
    PaDiMDetector.fit(images(seed), blank, seed).save(folder)
    return Models(
        params=params, paths={"padim.safetensors": folder / "padim.safetensors"}, device=blank.device
    )


def publish(models: Models, bundle_dir: Path, shift: float = 0.0) -> Path:
    """Write a bundle of ``models`` (thresholds from their scores on fresh images, + ``shift``)."""
    output = models.score(images(99), ("padim",))["padim"]
    thresholds = fit_thresholds(output, EvaluateSettings())
    moved = thresholds.threshold + shift
    point = dataclasses.replace(thresholds.operating_point, threshold=moved)
    thresholds = dataclasses.replace(thresholds, threshold=moved, operating_point=point)
    calibration = Calibration({"padim": Standardizer.fit(output)}, {})
    return write_bundle(bundle_dir, models, {"padim": thresholds}, calibration, models.params, {})
