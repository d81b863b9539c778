"""Curve primitives shared by ROC, PR, F1 and PRO: counts at every threshold, partial trapezoid, thinning.

Convention everywhere: a sample is predicted anomalous when ``score >= threshold``; the thresholds
are the distinct scores, in decreasing order, so tied scores enter the curve together (one step).
"""

from __future__ import annotations

import numpy as np


def descending_groups(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort ``scores`` (n,) once, decreasing; return ``(order, ends)``.

    ``order`` permutes the samples by decreasing score; ``ends[j]`` is the position in that order of
    the last sample of the j-th distinct score, so ``cumsum(x[order])[ends]`` counts ``x`` over all
    samples with ``score >= thresholds[j]``.
    """
    order = np.argsort(scores, kind="stable")[::-1]
    ranked = scores[order]
    ends = np.append(np.flatnonzero(ranked[1:] != ranked[:-1]), ranked.size - 1)
    return order, ends


def binary_counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive counts at every distinct threshold.

    Args:
        labels: (n,) bool, True = anomalous (checked by the caller).
        scores: (n,) float, larger = more anomalous.

    Returns:
        ``(fps, tps, thresholds)``, each (k,) for the k distinct scores, thresholds decreasing;
        ``fps[j]``/``tps[j]`` count good/anomalous samples with ``score >= thresholds[j]``.
    """
    order, ends = descending_groups(scores)
    tps = np.cumsum(labels[order], dtype=np.int64)[ends]
    fps = ends + 1 - tps
    return fps, tps, scores[order][ends]


def trapezoid_to(x: np.ndarray, y: np.ndarray, x_max: float | None = None) -> float:
    """Area under the polyline ``(x, y)`` (x non-decreasing) from ``x[0]`` to ``x_max``.

    If ``x_max`` falls between two points, ``y`` is interpolated linearly there (as the MVTec AD
    reference ``trapezoid`` does); ``x_max=None`` integrates the whole curve.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x_max is not None:
        x, y = clip_curve(x, y, x_max)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def clip_curve(x: np.ndarray, y: np.ndarray, x_max: float, *extra: np.ndarray) -> tuple[np.ndarray, ...]:
    """Keep the points with ``x <= x_max`` and add one interpolated at ``x_max`` if it lies inside.

    ``extra`` arrays aligned with ``x`` (e.g. thresholds) are clipped and interpolated the same way.
    """
    keep = int(np.searchsorted(x, x_max, side="right"))
    cols = [np.asarray(a, dtype=np.float64)[:keep] for a in (x, y, *extra)]
    if 0 < keep < len(x) and x[keep - 1] < x_max:
        w = (x_max - x[keep - 1]) / (x[keep] - x[keep - 1])
        cols = [
            np.append(c, (1 - w) * a[keep - 1] + w * a[keep])
            for c, a in zip(cols, (x, y, *extra), strict=True)
        ]
    return tuple(cols)


def thin_curve(x: np.ndarray, y: np.ndarray, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` points that keep the curve's shape, for CSV/plots.

    Points are taken at equal steps of arc length in the (x, y) unit square, so steep and flat
    parts both keep detail; the first and last points are always kept.
    """
    n = len(x)
    if n <= max_points:
        return np.arange(n)
    step = np.hypot(np.diff(x), np.diff(y))
    arc = np.concatenate([[0.0], np.cumsum(step)])
    targets = np.linspace(0.0, arc[-1], max_points)
    idx = np.searchsorted(arc, targets, side="left")
    return np.unique(np.concatenate([[0], np.clip(idx, 0, n - 1), [n - 1]]))
