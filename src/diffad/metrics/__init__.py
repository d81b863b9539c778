"""Anomaly-detection metrics (MVTec AD conventions), one metric per module.

Every function takes plain numpy arrays; larger scores mean more anomalous, and a sample counts as
predicted anomalous when ``score >= threshold``. Inputs a metric cannot use raise
:class:`~diffad.metrics.inputs.MetricInputError` (a ``DataError`` and a ``ValueError``).
"""

from diffad.metrics.f1 import best_f1, f1_at
from diffad.metrics.inputs import MetricInputError, flatten_pixels
from diffad.metrics.normalize import ScoreNormalizer, denormalize_scores, normalize_scores
from diffad.metrics.pr import average_precision, pr_curve
from diffad.metrics.pro import aupro, pro_curve
from diffad.metrics.roc import auroc, roc_curve
from diffad.metrics.summary import METRIC_KEYS, curves, method_metrics

__all__ = [
    "METRIC_KEYS",
    "MetricInputError",
    "ScoreNormalizer",
    "aupro",
    "auroc",
    "average_precision",
    "best_f1",
    "curves",
    "denormalize_scores",
    "f1_at",
    "flatten_pixels",
    "method_metrics",
    "normalize_scores",
    "pr_curve",
    "pro_curve",
    "roc_curve",
]
