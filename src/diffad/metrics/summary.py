"""Every metric of one method, overall and per defect type, plus thinned curves for plots.

Keys of a metric block (None where not applicable):
    image_auroc, image_ap         ranking of image scores
    pixel_auroc, aupro            ranking of map pixels; AUPRO up to FPR ``fpr_limit``
    image_f1, pixel_f1            F1 at the adaptive (F1-maximising) threshold
    image_threshold, pixel_threshold   those adaptive thresholds (raw score units)
    image_f1_manual, pixel_f1_manual   F1 at the manual threshold(s) given by the caller
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
    "pixel_f1",
    "image_f1_manual",
    "pixel_f1_manual",
    "image_threshold",
    "pixel_threshold",
)


def _image_block(labels: np.ndarray, scores: np.ndarray, manual: float | None) -> dict[str, float | None]:
    f1, threshold = best_f1(labels, scores)
    return {
        "image_auroc": auroc(labels, scores),
        "image_ap": average_precision(labels, scores),
        "image_f1": f1,
        "image_threshold": threshold,
        "image_f1_manual": None if manual is None else f1_at(labels, scores, manual),
    }


def _pixel_block(
    masks: np.ndarray, maps: np.ndarray, manual: float | None, fpr_limit: float
) -> dict[str, float | None]:
    pixel_labels, pixel_scores = flatten_pixels(masks, maps)
    f1, threshold = best_f1(pixel_labels, pixel_scores)
    return {
        "pixel_auroc": auroc(pixel_labels, pixel_scores),
        "aupro": aupro(masks, maps, fpr_limit=fpr_limit),
        "pixel_f1": f1,
        "pixel_threshold": threshold,
        "pixel_f1_manual": None if manual is None else f1_at(pixel_labels, pixel_scores, manual),
    }


def _block(
    labels: np.ndarray,
    scores: np.ndarray,
    masks: np.ndarray | None,
    maps: np.ndarray | None,
    manual: float | None,
    pixel_manual: float | None,
    fpr_limit: float,
    name: str,
    notes: list[str],
) -> dict[str, float | None]:
    block: dict[str, float | None] = dict.fromkeys(METRIC_KEYS)
    block.update(_image_block(labels, scores, manual))
    if masks is not None and maps is not None:
        if not masks.any():
            notes.append(f"{name}: pixel metrics skipped, the ground-truth masks hold no defect pixel")
        elif masks.all():
            notes.append(f"{name}: pixel metrics skipped, the ground-truth masks hold no good pixel")
        else:
            block.update(_pixel_block(masks, maps, pixel_manual, fpr_limit))
    return block


def method_metrics(
    labels: np.ndarray,
    scores: np.ndarray,
    masks: np.ndarray | None,
    maps: np.ndarray | None,
    defects: Sequence[str],
    manual_threshold: float | None,
    *,
    pixel_manual_threshold: float | None = None,
    fpr_limit: float = 0.3,
) -> dict[str, Any]:
    """All metrics of one method on one test set.

    Args:
        labels: (N,) {0, 1}, 1 = anomalous.
        scores: (N,) image scores, larger = more anomalous.
        masks: (N, H, W) ground truth (nonzero = defect; good images all zero) or None.
        maps: (N, H, W) anomaly maps or None; pixel metrics need both masks and maps.
        defects: (N,) defect type of each image ("good" for good images).
        manual_threshold: image-score threshold for ``image_f1_manual`` (None: not reported).
        pixel_manual_threshold: map threshold for ``pixel_f1_manual``; None reuses
            ``manual_threshold``, which is right only when maps and scores share a scale (e.g.
            both normalised so that the threshold is 100).
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
    pixel_manual = manual_threshold if pixel_manual_threshold is None else pixel_manual_threshold

    def block(rows: np.ndarray, name: str) -> dict[str, float | None]:
        sub = (None, None) if masks is None else (masks[rows], maps[rows])
        return _block(
            labels[rows], scores[rows], *sub, manual_threshold, pixel_manual, fpr_limit, name, notes
        )

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
