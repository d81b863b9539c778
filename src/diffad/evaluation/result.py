"""What measuring found: every method's test outputs, operating point and metrics, and what was
fitted for serving; the reports (:mod:`diffad.evaluation.report`) are made of it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from diffad.components.detector import Calibration, MethodOutput
from diffad.inference.decision import MethodThresholds


@dataclass
class Evaluation:
    """Everything the reports are made of."""

    test_rows: np.ndarray  # manifest index of the test images (labelled and unknown)
    labels: np.ndarray  # (N_test,) 1 anomaly, 0 good, -1 unknown
    masks: np.ndarray | None  # (N_labelled, H, W) ground truth of the labelled test images, or None
    outputs: dict[str, MethodOutput]  # method -> outputs on the test images
    thresholds: dict[str, MethodThresholds]
    metrics: dict[str, dict]  # method -> method_metrics(...)
    ms_per_image: dict[str, float]
    calibration: Calibration  # what the served models need for the composites (the bundle's)
