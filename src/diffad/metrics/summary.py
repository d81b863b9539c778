"""Every metric of one method, overall and per defect type, plus thinned curves for plots.

Keys of a metric block (None where not applicable):
    image_auroc, image_ap, pixel_auroc, aupro   threshold-free: rankings of image scores / map pixels
                                  (AUPRO up to FPR ``fpr_limit``)
    image_f1, image_precision, image_false_alarm_rate, image_miss_rate, pixel_f1
                                  at the shipped operating point (the thresholds the caller gives)
    image_threshold, pixel_threshold   those thresholds (raw score units)
    image_f1_oracle, pixel_f1_oracle   the best F1 over all thresholds, chosen on these very labels:
                                  optimistic, for comparison with papers only
    image_threshold_oracle        the threshold of image_f1_oracle
Pixel metrics are None when there are no masks or maps, or when the images in question have no
defect pixel; the reason is added to ``notes``. ``unknown`` images must be left out by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from diffad.metrics.curve import thin_curve
from diffad.metrics.f1 import best_f1, f1_at
from diffad.metrics.inputs import MetricInputError, check_labels_scores, check_masks_maps, flatten_pixels
from diffad.metrics.pr import average_precision, pr_curve
from diffad.metrics.pro import aupro, pro_curve
from diffad.metrics.roc import auroc, roc_curve

METRIC_KEYS = (
    "image_auroc",
    "image_ap",
    "pixel_auroc",
    "aupro",
    "image_f1",
    "image_precision",
    "image_false_alarm_rate",
    "image_miss_rate",
    "pixel_f1",
    "image_threshold",
    "pixel_threshold",
    "image_f1_oracle",
    "pixel_f1_oracle",
    "image_threshold_oracle",
)


def operating_point_rates(labels: np.ndarray, flagged: np.ndarray) -> dict[str, float | None]:
    """Precision, false-alarm rate (good flagged) and miss rate (anomalies not flagged) of decisions."""
    labels, flagged = np.asarray(labels).astype(bool), np.asarray(flagged).astype(bool)
    tp, fp = np.count_nonzero(flagged & labels), np.count_nonzero(flagged & ~labels)
    good, bad = np.count_nonzero(~labels), np.count_nonzero(labels)
    return {
        "image_precision": tp / (tp + fp) if tp + fp else None,
        "image_false_alarm_rate": fp / good if good else None,
        "image_miss_rate": (bad - tp) / bad if bad else None,
    }


def _image_block(labels: np.ndarray, scores: np.ndarray, threshold: float | None) -> dict[str, float | None]:
    oracle_f1, oracle_threshold = best_f1(labels, scores)
    block = {
        "image_auroc": auroc(labels, scores),
        "image_ap": average_precision(labels, scores),
        "image_f1_oracle": oracle_f1,
        "image_threshold_oracle": oracle_threshold,
    }
    if threshold is not None:
        block.update(operating_point_rates(labels, scores >= threshold))
        block.update(image_f1=f1_at(labels, scores, threshold), image_threshold=threshold)
    return block


def _pixel_block(
    masks: np.ndarray, maps: np.ndarray, threshold: float | None, fpr_limit: float
) -> dict[str, float | None]:
    pixel_labels, pixel_scores = flatten_pixels(masks, maps)
    return {
        "pixel_auroc": auroc(pixel_labels, pixel_scores),
        "aupro": aupro(masks, maps, fpr_limit=fpr_limit),
        "pixel_f1_oracle": best_f1(pixel_labels, pixel_scores)[0],
        "pixel_f1": None if threshold is None else f1_at(pixel_labels, pixel_scores, threshold),
        "pixel_threshold": threshold,
    }


def _block(
    labels: np.ndarray,
    scores: np.ndarray,
    masks: np.ndarray | None,
    maps: np.ndarray | None,
    threshold: float | None,
    pixel_threshold: float | None,
    fpr_limit: float,
    name: str,
    notes: list[str],
) -> dict[str, float | None]:
    block: dict[str, float | None] = dict.fromkeys(METRIC_KEYS)
    block.update(_image_block(labels, scores, threshold))
    if masks is not None and maps is not None:
        if not masks.any():
            notes.append(f"{name}: pixel metrics skipped, the ground-truth masks hold no defect pixel")
        elif masks.all():
            notes.append(f"{name}: pixel metrics skipped, the ground-truth masks hold no good pixel")
        else:
            block.update(_pixel_block(masks, maps, pixel_threshold, fpr_limit))
    return block


def method_metrics(
    labels: np.ndarray,
    scores: np.ndarray,
    masks: np.ndarray | None,
    maps: np.ndarray | None,
    defects: Sequence[str],
    threshold: float | None,
    *,
    pixel_threshold: float | None = None,
    fpr_limit: float = 0.3,
) -> dict[str, Any]:
    """All metrics of one method on one test set.

    Args:
        labels: (N,) {0, 1}, 1 = anomalous.
        scores: (N,) image scores, larger = more anomalous.
        masks: (N, H, W) ground truth (nonzero = defect; good images all zero) or None.
        maps: (N, H, W) anomaly maps or None; pixel metrics need both masks and maps.
        defects: (N,) defect type of each image ("good" for good images).
        threshold: the shipped image-score threshold (None: operating-point metrics not reported).
        pixel_threshold: the shipped map threshold for ``pixel_f1`` (None: not reported).
        fpr_limit: FPR up to which AUPRO integrates.

    Returns:
        ``{"overall": block, "per_defect": {defect: block}, "notes": [str]}``, blocks as in the
        module docstring; a defect's block compares its images with all good images.

    Raises:
        MetricInputError (a ``ValueError``): one class only, NaN scores, inconsistent lengths.
    """
    labels, scores = check_labels_scores(labels, scores, what="method_metrics")
    defects = np.asarray(defects, dtype=str)
    if defects.shape != labels.shape:
        raise MetricInputError(f"method_metrics: {defects.shape[0]} defect names for {labels.size} images")
    notes: list[str] = []
    if masks is None or maps is None:
        notes.append(f"pixel metrics skipped: no {'ground-truth masks' if masks is None else 'anomaly maps'}")
        masks = maps = None
    else:
        masks, maps = check_masks_maps(masks, maps, what="method_metrics")
        if masks.shape[0] != labels.size:
            raise MetricInputError(f"method_metrics: {masks.shape[0]} masks for {labels.size} images")

    def block(rows: np.ndarray, name: str) -> dict[str, float | None]:
        sub = (None, None) if masks is None else (masks[rows], maps[rows])
        return _block(labels[rows], scores[rows], *sub, threshold, pixel_threshold, fpr_limit, name, notes)

    overall = block(np.ones(labels.size, dtype=bool), "overall")
    per_defect = {
        str(d): block(~labels | ((defects == d) & labels), str(d)) for d in sorted(set(defects[labels]))
    }
    return {"overall": overall, "per_defect": per_defect, "notes": notes}


def curves(
    labels: np.ndarray,
    scores: np.ndarray,
    masks: np.ndarray | None,
    maps: np.ndarray | None,
    *,
    max_points: int = 200,
    fpr_limit: float = 0.3,
) -> dict[str, pd.DataFrame]:
    """Image ROC and PR curves and the pixel PRO curve, each thinned to <= ``max_points`` rows.

    Returns:
        ``{"roc": ..., "pr": ..., "pro": ...}`` DataFrames with columns ``x, y, threshold``:
        roc x = FPR, y = TPR; pr x = recall, y = precision; pro x = FPR (up to ``fpr_limit``),
        y = PRO. "pro" is absent without masks/maps or without defect pixels. The first ROC and
        PRO threshold is +inf; the last PR point (recall 0) has threshold NaN.
    """
    fpr, tpr, roc_t = roc_curve(labels, scores)
    precision, recall, pr_t = pr_curve(labels, scores)
    raw = {
        "roc": (fpr, tpr, roc_t),
        "pr": (recall, precision, np.append(pr_t, np.nan)),
    }
    if masks is not None and maps is not None and np.any(masks) and not np.all(masks):
        raw["pro"] = pro_curve(masks, maps, fpr_limit=fpr_limit)
    out = {}
    for name, (x, y, t) in raw.items():
        idx = thin_curve(x, y, max_points)
        out[name] = pd.DataFrame({"x": x[idx], "y": y[idx], "threshold": t[idx]})
    return out
