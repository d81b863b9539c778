"""How a bundle decides, per method: the shipped threshold, the normalisation, the calibration
scores behind the percentiles, and the operating point the threshold was chosen at.

Fitted by :mod:`diffad.evaluation.thresholds` from the calibration images only; saved in the bundle
(one JSON object per method, :meth:`MethodThresholds.to_dict`), so that `predict`, the dashboard
and the reports decide with :meth:`MethodThresholds.decide` alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from diffad.metrics.normalize import ScoreNormalizer


@dataclass(frozen=True)
class OperatingPoint:
    """How the shipped threshold was chosen, and how many calibration images back it."""

    policy: str  # false_alarm_rate | fixed_score | miss_rate (evaluate.threshold_policy)
    parameters: dict[str, float]  # the policy's parameters, as in params.yaml
    threshold: float  # raw score; flagged when score >= threshold
    calibration_images: int
    calibration_alarms: int  # calibration images at or above the threshold
    false_alarm_rate: float  # calibration_alarms / calibration_images
    false_alarm_rate_upper: float  # one-sided Clopper-Pearson bound at ``confidence``
    confidence: float
    validation_defects: int  # labelled validation defects used (miss_rate policy), else 0
    note: str  # why the figure is weak, when it is ("" otherwise)


@dataclass(frozen=True)
class MethodThresholds:
    """Everything one method decides and displays with; the bundle's JSON for that method."""

    threshold: float  # raw decision threshold (= operating_point.threshold)
    operating_point: OperatingPoint
    pixel_threshold: float | None  # map value flagged on target_false_alarm_rate of calibration pixels
    normalizer: dict[str, float]  # score -> [0, 1000] with the decision threshold at 100
    reference_normalizer: dict[str, float]  # the fixed_score scale: 100 = target-rate threshold
    map_vmin: float | None  # heatmap colours: [median calibration pixel, 2 x pixel threshold - median]
    map_vmax: float | None
    good_scores: list[float]  # calibration scores, sorted: percentiles and the histogram
    good_stats: dict[str, float]  # n, mean, std, min, median, max of good_scores

    def decide(self, scores: np.ndarray) -> np.ndarray:
        """Boolean (N,): anomalous when ``score >= threshold``; the one decision rule."""
        return np.asarray(scores, np.float64) >= self.threshold

    def normalize(self, scores: np.ndarray) -> np.ndarray:
        return ScoreNormalizer.from_dict(self.normalizer)(np.asarray(scores, np.float64))

    def percentile(self, scores: np.ndarray) -> np.ndarray:
        """Share (0-100) of the calibration images that score lower."""
        good = np.asarray(self.good_scores)
        return 100.0 * np.searchsorted(good, np.asarray(scores), side="left") / max(len(good), 1)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> MethodThresholds:
        """Rebuild from :meth:`to_dict` output (raises TypeError/KeyError when malformed)."""
        return cls(**{**d, "operating_point": OperatingPoint(**d["operating_point"])})
