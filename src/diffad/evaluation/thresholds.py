"""Decision thresholds, score normalisation and display ranges of one method.

Saved in the bundle so that `predict` decides exactly as `evaluate` reported:
    threshold         adaptive: the image score maximising F1 on the labelled test images
                      (falls back to the manual one when the test set has no anomalies)
    manual_threshold  the `manual_threshold_quantile` of the good reference images' scores
    normalizer        score -> [0, 1000] with the decision threshold at 100
    map range         heatmap colour scale: [median good pixel, 2 x pixel threshold - median],
                      so the pixel decision threshold sits at the middle of the colormap
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from diffad.evaluation.methods import MethodOutput
from diffad.metrics import best_f1
from diffad.metrics.normalize import ScoreNormalizer


@dataclass(frozen=True)
class MethodThresholds:
    threshold: float
    manual_threshold: float
    pixel_threshold: float | None
    pixel_manual_threshold: float | None
    normalizer: dict[str, float]
    map_vmin: float | None
    map_vmax: float | None
    good_scores: list[float]  # reference good images, for percentiles

    def normalize(self, scores: np.ndarray) -> np.ndarray:
        return ScoreNormalizer.from_dict(self.normalizer)(np.asarray(scores, np.float64))

    def percentile(self, scores: np.ndarray) -> np.ndarray:
        """Share (0-100) of the good reference images that score lower."""
        good = np.sort(np.asarray(self.good_scores))
        return 100.0 * np.searchsorted(good, np.asarray(scores), side="left") / max(len(good), 1)

    def to_dict(self) -> dict:
        return asdict(self)


def fit_thresholds(
    reference: MethodOutput, test: MethodOutput, labels: np.ndarray, masks: np.ndarray | None, quantile: float
) -> MethodThresholds:
    """Thresholds from good reference outputs and the labelled test outputs (labels 0/1)."""
    manual = float(np.quantile(reference.scores, quantile))
    threshold = float(best_f1(labels, test.scores)[1]) if labels.any() and not labels.all() else manual
    low = min(float(reference.scores.min()), float(test.scores.min()))
    if threshold <= low:  # a degenerate adaptive threshold: keep the scale usable
        threshold = manual if manual > low else low + 1e-6
    pixel = pixel_manual = vmin = vmax = None
    if reference.maps is not None:
        good_pixels = reference.maps.ravel()
        pixel_manual = float(np.quantile(good_pixels, quantile))
        pixel = pixel_manual
        if masks is not None and masks.any():
            pixel = float(best_f1(masks.ravel().astype(np.int64), test.maps.ravel())[1])
        vmin = float(np.median(good_pixels))
        vmax = max(2 * pixel - vmin, vmin + 1e-6)
    return MethodThresholds(
        threshold=threshold,
        manual_threshold=manual,
        pixel_threshold=pixel,
        pixel_manual_threshold=pixel_manual,
        normalizer=ScoreNormalizer(threshold=threshold, low=low).to_dict(),
        map_vmin=vmin,
        map_vmax=vmax,
        good_scores=[float(s) for s in reference.scores],
    )
