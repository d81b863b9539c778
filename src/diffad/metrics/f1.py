"""F1 score at a given threshold and the adaptive threshold that maximises it.

F1 = 2 TP / (2 TP + FP + FN), with a sample predicted anomalous when ``score >= threshold``.
F1 ignores true negatives, so it needs anomalous samples but not good ones.
Pixel-level F1: pass ``flatten_pixels(masks, maps)`` (see :mod:`diffad.metrics.inputs`).
"""

from __future__ import annotations

import numpy as np

from diffad.metrics.curve import binary_counts
from diffad.metrics.inputs import check_labels_scores


def f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Element-wise F1 = 2 TP / (2 TP + FP + FN); 0 where nothing is predicted nor present."""
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros(np.shape(denom), dtype=np.float64), where=denom > 0)


def f1_at(labels: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    """F1 of the decision ``scores >= threshold`` against ``labels`` (N,) {0, 1}, 1 = anomalous.

    Raises:
        MetricInputError (a ``ValueError``): no anomalous sample, NaN/inf scores, shape mismatch.
    """
    labels, scores = check_labels_scores(labels, scores, need_negatives=False, what="F1")
    predicted = scores >= threshold
    tp = np.count_nonzero(predicted & labels)
    fp = np.count_nonzero(predicted & ~labels)
    fn = np.count_nonzero(~predicted & labels)
    return float(f1_from_counts(np.asarray(tp), np.asarray(fp), np.asarray(fn)))


def best_f1(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """The largest F1 over all thresholds, and that threshold (the adaptive threshold).

    Every distinct score is tried as a threshold (exact). Among thresholds with equal best F1 the
    highest is returned (fewest alarms). ``f1_at(labels, scores, threshold)`` gives back the F1.

    Returns:
        ``(f1, threshold)``, threshold being one of ``scores``.
    """
    labels, scores = check_labels_scores(labels, scores, need_negatives=False, what="F1")
    fps, tps, thresholds = binary_counts(labels, scores)
    f1 = f1_from_counts(tps, fps, tps[-1] - tps)
    best = int(np.argmax(f1))  # first maximum = highest threshold
    return float(f1[best]), float(thresholds[best])
