"""A stand-in for ``diffad.inference.predict`` with the same API and a model whose answers are known.

Score = darkness (1 - mean intensity, in [0, 1]); the good reference scores are 0.10 .. 0.30, the
threshold 0.35 (normalized 100). So a white image scores 0 (percentile 0, normal) and a black one
scores 1 (percentile 100, anomalous). ``ensemble`` has an anomaly map, ``msma_gmm`` does not.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from diffad.core.errors import ArtifactError
from diffad.viz.heatmap import overlay_heatmap

THRESHOLD = 0.35
GOOD_SCORES = np.linspace(0.10, 0.30, 50)
METHODS = ["ensemble", "msma_gmm"]


@dataclass
class Prediction:
    score: float
    norm_score: float
    anomalous: bool
    percentile: float
    heatmap: np.ndarray | None
    overlay: np.ndarray | None
    change: str = ""


@dataclass(frozen=True)
class Threshold:
    threshold: float


class Predictor:
    loads: list[str] = []  # bundle folders loaded, to check the dashboard's caching

    def __init__(self) -> None:
        self.methods = list(METHODS)
        self.thresholds = {m: Threshold(THRESHOLD) for m in METHODS}

    @classmethod
    def load(cls, bundle_dir: str | Path, device: str = "cpu") -> Predictor:
        if not (Path(bundle_dir) / "bundle.json").is_file():
            raise ArtifactError(f"{bundle_dir}/bundle.json: not found")
        cls.loads.append(str(bundle_dir))
        return cls()

    def good_scores(self, method: str) -> np.ndarray:
        return GOOD_SCORES.copy()

    def predict(self, image: Image.Image, method: str) -> Prediction:
        rgb = np.asarray(image.convert("RGB").resize((32, 32)))
        darkness = 1.0 - rgb.mean(axis=-1).astype(np.float32) / 255.0
        score = float(darkness.mean())
        percentile = 100.0 * float(np.searchsorted(np.sort(GOOD_SCORES), score)) / len(GOOD_SCORES)
        heat = darkness if method == "ensemble" else None
        overlay = (
            None if heat is None else overlay_heatmap(rgb, heat, vmin=0.0, vmax=1.0, out_size=(128, 128))
        )
        return Prediction(score, 100.0 * score / THRESHOLD, score >= THRESHOLD, percentile, heat, overlay)


class BrokenPredictor(Predictor):
    @classmethod
    def load(cls, bundle_dir: str | Path, device: str = "cpu") -> Predictor:
        raise ArtifactError(f"{bundle_dir}/bundle.json: bundle format 0, expected 1")


def install(predictor: type = Predictor) -> types.ModuleType:
    """Put a fake ``diffad.inference.predict`` into sys.modules (the caller restores it)."""
    module = types.ModuleType("diffad.inference.predict")
    module.Predictor, module.Prediction = predictor, Prediction
    sys.modules["diffad.inference.predict"] = module
    return module
