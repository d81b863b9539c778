"""Input checks shared by every metric: shapes, finite scores, both classes present."""

from __future__ import annotations

import numpy as np

from diffad.core.errors import DataError

# Pixel sets larger than this are subsampled (every k-th pixel) by :func:`flatten_pixels`.
MAX_EXACT_PIXELS = 50_000_000


class MetricInputError(DataError, ValueError):
    """Labels/scores a metric cannot be computed on (one class only, NaN scores, shape mismatch)."""


def check_finite(scores: np.ndarray, name: str) -> None:
    """Raise :class:`MetricInputError` naming ``name`` if ``scores`` holds NaN or +-inf."""
    if not np.all(np.isfinite(scores)):
        bad = int(np.size(scores) - np.count_nonzero(np.isfinite(scores)))
        raise MetricInputError(f"{name}: {bad} of {np.size(scores)} values are NaN or infinite")


def as_floats(scores: np.ndarray) -> np.ndarray:
    """``scores`` as a floating array; float32 stays float32 (halves memory on pixel sets)."""
    scores = np.asarray(scores)
    if scores.dtype in (np.float32, np.float64):
        return scores
    return scores.astype(np.float64)


def check_labels_scores(
    labels: np.ndarray, scores: np.ndarray, *, need_negatives: bool = True, what: str = "metric"
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a binary problem and return ``(labels bool (N,), scores float (N,))``.

    ``labels`` (N,) in {0, 1} (or bool), 1 = anomalous; ``scores`` (N,), larger = more anomalous.
    Raises :class:`MetricInputError` (a ``ValueError``) on shape mismatch, non-binary labels,
    NaN/inf scores, no anomalous samples, or (if ``need_negatives``) no good samples.
    """
    labels = np.asarray(labels)
    scores = as_floats(scores)
    if labels.ndim != 1 or scores.ndim != 1 or labels.shape != scores.shape:
        raise MetricInputError(
            f"{what}: labels and scores must be 1-D of equal length, got {labels.shape} and {scores.shape}"
        )
    if labels.dtype != bool:
        if not np.isin(labels, (0, 1)).all():
            raise MetricInputError(
                f"{what}: labels must be 0 (good) or 1 (anomalous), got {np.unique(labels)}"
            )
        labels = labels == 1
    check_finite(scores, f"{what} scores")
    n_pos = int(np.count_nonzero(labels))
    if n_pos == 0 or (need_negatives and n_pos == labels.size):
        found = "no anomalous" if n_pos == 0 else "no good"
        raise MetricInputError(
            f"{what} needs both good and anomalous samples; got {labels.size} samples with {found} ones"
        )
    return labels, scores


def check_masks_maps(
    masks: np.ndarray, maps: np.ndarray, what: str = "pixel metric"
) -> tuple[np.ndarray, np.ndarray]:
    """Validate ground-truth ``masks`` (N, H, W) (nonzero = defect) against anomaly ``maps`` (N, H, W).

    A single (H, W) pair is accepted as N = 1. Returns ``(masks bool, maps float)``.
    """
    masks = np.asarray(masks)
    maps = as_floats(maps)
    if masks.ndim == 2:
        masks, maps = masks[None], maps[None]
    if masks.ndim != 3 or masks.shape != maps.shape:
        raise MetricInputError(
            f"{what}: masks and maps must both be (N, H, W), got {masks.shape} and {maps.shape}"
        )
    check_finite(maps, f"{what} maps")
    return masks != 0, maps


def flatten_pixels(
    masks: np.ndarray, maps: np.ndarray, max_pixels: int = MAX_EXACT_PIXELS
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel labels and scores, flattened, for pixel AUROC / AP / F1.

    Exact below ``max_pixels``. Above, every k-th pixel (k = ceil(n / max_pixels)) is kept: a
    deterministic, spatially uniform sample that bounds memory (sorting 50 M float32 pixels needs
    about 0.6 GB). AUPRO never subsamples (it needs whole regions).
    """
    masks, maps = check_masks_maps(masks, maps)
    labels, scores = masks.reshape(-1), maps.reshape(-1)
    if labels.size > max_pixels:
        step = -(-labels.size // max_pixels)
        labels, scores = labels[::step], scores[::step]
    return labels, scores
