"""What the feature-memory baselines share as detectors: one backbone for fitting, one file each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from diffad.components.detector import Batch, ImageDetector, MethodOutput


class BackboneDetector(ImageDetector):
    """A model fitted on backbone features (``fit``/``score``/``save``/``load``) as a detector."""

    def __init__(self, model) -> None:
        self.model = model

    @classmethod
    def model_type(cls) -> Any:
        raise NotImplementedError

    @classmethod
    def fit(cls, images, models, seed: int) -> BackboneDetector:
        extractor = models.shared("backbone", lambda: _fit_backbone(models))
        settings = getattr(models.params, cls.name)  # the method's own section of params.yaml
        model = cls.model_type()(extractor, models.params.backbone, settings, models.device)
        return cls(model.fit(images, seed=seed))

    @classmethod
    def load(cls, models) -> BackboneDetector:
        # the backbone's set-up comes from the file
        return cls(cls.model_type().load(models.file(cls.model_files[0]), None, models.device))

    def score(self, batch: Batch) -> MethodOutput:
        scores, maps = self.model.score(batch.images)
        return MethodOutput(np.asarray(scores, np.float64), np.asarray(maps, np.float32))

    def save(self, folder: Path) -> None:
        self.model.save(Path(folder) / self.model_files[0])


def _fit_backbone(models):
    from diffad.components.backbone import FeatureExtractor

    cfg = models.params.backbone
    return FeatureExtractor(cfg.feature_blocks, cfg.input_size, border_pad=cfg.border_pad).to(models.device)
