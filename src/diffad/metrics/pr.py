"""Precision-recall curve and average precision (AP), image- or pixel-level.

At threshold t: precision(t) = TP / (TP + FP), recall(t) = TP / P. AP is the step-wise
(non-interpolated) sum  AP = sum_k (R_k - R_{k+1}) P_k  over the distinct thresholds, as
``sklearn.metrics.average_precision_score``; tied scores enter together.
"""

from __future__ import annotations

import numpy as np

from diffad.metrics.curve import binary_counts
from diffad.metrics.inputs import check_labels_scores


def pr_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision-recall curve in sklearn's layout.

    Args:
        labels: (N,) {0, 1} or bool, 1 = anomalous.
        scores: (N,) float, larger = more anomalous.

    Returns:
        ``(precision, recall, thresholds)``: thresholds (k,) are the distinct scores increasing;
        precision and recall are (k + 1,), recall decreasing, ending with the point (recall 0,
        precision 1) that has no threshold. Equal to ``sklearn.metrics.precision_recall_curve``.

    Raises:
        MetricInputError (a ``ValueError``): one class only, NaN/inf scores, shape mismatch.
    """
    labels, scores = check_labels_scores(labels, scores, what="PR curve")
    fps, tps, thresholds = binary_counts(labels, scores)
    precision = tps / (tps + fps)  # tps + fps >= 1: every threshold is some sample's score
    recall = tps / tps[-1]
    return (
        np.concatenate([precision[::-1], [1.0]]),
        np.concatenate([recall[::-1], [0.0]]),
        thresholds[::-1].astype(np.float64),
    )


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision in [0, 1] (1 = perfect; a random ranking gives about P / N_total).

    Same arguments and errors as :func:`pr_curve`.
    """
    precision, recall, _ = pr_curve(labels, scores)
    return float(-np.sum(np.diff(recall) * precision[:-1]))
