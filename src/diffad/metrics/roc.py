"""ROC curve and the area under it (AUROC), image- or pixel-level.

Notation: P / N = number of anomalous / good samples; at threshold t,
TPR(t) = #{anomalous, s >= t} / P and FPR(t) = #{good, s >= t} / N.
Tied scores form one diagonal step, so a tie counts as half a correct ranking, exactly as
``sklearn.metrics.roc_auc_score`` (AUROC = P(s_anomalous > s_good) + 0.5 P(s_anomalous = s_good)).
"""

from __future__ import annotations

import numpy as np

from diffad.metrics.curve import binary_counts, trapezoid_to
from diffad.metrics.inputs import check_labels_scores


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve at every distinct score.

    Args:
        labels: (N,) {0, 1} or bool, 1 = anomalous.
        scores: (N,) float, larger = more anomalous; NaN/inf raise.

    Returns:
        ``(fpr, tpr, thresholds)``, each (k + 1,) for k distinct scores: the curve starts at (0, 0)
        with threshold +inf, thresholds decrease, and the last point is (1, 1). Unlike sklearn's
        default, no intermediate point is dropped.

    Raises:
        MetricInputError (a ``ValueError``): one class only, NaN/inf scores, shape mismatch.
    """
    labels, scores = check_labels_scores(labels, scores, what="ROC")
    fps, tps, thresholds = binary_counts(labels, scores)
    fpr = np.concatenate([[0.0], fps / fps[-1]])
    tpr = np.concatenate([[0.0], tps / tps[-1]])
    return fpr, tpr, np.concatenate([[np.inf], thresholds.astype(np.float64)])


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve in [0, 1]: 1 = perfect ranking, 0.5 = chance, 0 = inverted.

    Same arguments and errors as :func:`roc_curve`.
    """
    fpr, tpr, _ = roc_curve(labels, scores)
    return trapezoid_to(fpr, tpr)
