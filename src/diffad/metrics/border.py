"""Where the maps peak: the share of images whose hottest pixel lies in a frame along the border.

A map whose convolutions saw zero padding is brightest along its edges on good images; this
measures that frame. With a band of ``fraction`` of each side (8 % by default) the band covers
1 - (1 - 2 fraction)^2 = 29 % of the image, so maps that peak anywhere with equal chance put
about 29 % of good images' peaks there; a framed method puts far more.
"""

from __future__ import annotations

import numpy as np

from diffad.metrics.inputs import MetricInputError


def border_peak_share(maps: np.ndarray, fraction: float = 0.08) -> float:
    """Share of ``maps`` (N, H, W) whose maximum lies within ``fraction`` of a side of the border
    (at least one pixel); the first maximum counts when several pixels tie."""
    maps = np.asarray(maps)
    if maps.ndim != 3 or maps.shape[0] == 0:
        raise MetricInputError(f"border peaks: expected maps (N, H, W) with N > 0, got {maps.shape}")
    if not 0.0 < fraction < 0.5:
        raise MetricInputError(f"border peaks: fraction must be in (0, 0.5), got {fraction!r}")
    n, h, w = maps.shape
    band_h, band_w = max(1, round(fraction * h)), max(1, round(fraction * w))
    row, col = np.divmod(maps.reshape(n, -1).argmax(axis=1), w)
    near = (row < band_h) | (row >= h - band_h) | (col < band_w) | (col >= w - band_w)
    return float(near.mean())
