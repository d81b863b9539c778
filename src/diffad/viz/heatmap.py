"""Anomaly heatmap overlays: colormap, bilinear upsampling, alpha blend, ground-truth contour.

No matplotlib: the colormaps are small tables of stops, interpolated linearly per channel.
``inferno`` uses matplotlib's inferno at 6 equally spaced stops (viridisLite's ``inferno(6)``);
``jet`` is matplotlib's piecewise-linear definition.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

# name -> per channel (R, G, B): (positions in [0, 1], values in [0, 1])
_INFERNO = (
    np.array(
        [
            [0x00, 0x00, 0x04],
            [0x42, 0x0A, 0x68],
            [0x93, 0x26, 0x67],
            [0xDD, 0x51, 0x3A],
            [0xFC, 0xA5, 0x0A],
            [0xFC, 0xFF, 0xA4],
        ]
    )
    / 255.0
)
COLORMAPS: dict[str, tuple[tuple[np.ndarray, np.ndarray], ...]] = {
    "inferno": tuple((np.linspace(0.0, 1.0, 6), _INFERNO[:, c]) for c in range(3)),
    "jet": (
        (np.array([0.0, 0.35, 0.66, 0.89, 1.0]), np.array([0.0, 0.0, 1.0, 1.0, 0.5])),
        (np.array([0.0, 0.125, 0.375, 0.64, 0.91, 1.0]), np.array([0.0, 0.0, 1.0, 1.0, 0.0, 0.0])),
        (np.array([0.0, 0.11, 0.34, 0.65, 1.0]), np.array([0.5, 1.0, 1.0, 0.0, 0.0])),
    ),
}
# Ground-truth contour colour per colormap: one the colormap never takes.
CONTOUR_COLORS: dict[str, tuple[int, int, int]] = {"inferno": (0, 255, 255), "jet": (255, 255, 255)}
LARGE_SIDE = 512  # output images with a side this large get a 2-px contour
# The overlays' colour range puts the pixel threshold in its middle (evaluation/thresholds.py:
# vmin = median calibration pixel, vmax = 2 x threshold - vmin), so on the 0-1000 scale with the
# threshold at 100 the colours span 0 (a typical good pixel) to 200; above 200 is the top colour.
SCALE_TOP = 200
THRESHOLD_MARK = 100


def apply_colormap(values: np.ndarray, name: str = "inferno") -> np.ndarray:
    """Map ``values`` in [0, 1] (any shape, clipped) to uint8 RGB, shape ``values.shape + (3,)``."""
    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap {name!r}; known: {sorted(COLORMAPS)}")
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    rgb = np.stack([np.interp(v, xp, fp) for xp, fp in COLORMAPS[name]], axis=-1)
    return np.round(rgb * 255.0).astype(np.uint8)


def _resize(array: np.ndarray, size: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    """Resize a 2-D float32 or (H, W, 3) uint8 array to ``size`` = (H, W) with PIL."""
    if array.shape[:2] == tuple(size):
        return array
    return np.asarray(Image.fromarray(array).resize((size[1], size[0]), resample=resample))


def mask_contour(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """Inner boundary of ``mask`` (H, W) bool, ``width`` pixels thick.

    A contour pixel is a mask pixel within ``width`` steps (8-neighbourhood) of a non-mask pixel or
    of the image border, so regions touching the border get a closed outline.
    """
    mask = np.asarray(mask, dtype=bool)
    inner = ndimage.binary_erosion(mask, structure=np.ones((3, 3), bool), iterations=width, border_value=0)
    return mask & ~inner


def overlay_heatmap(
    image: np.ndarray,
    heat: np.ndarray,
    *,
    vmin: float,
    vmax: float,
    alpha: float = 0.6,
    mask: np.ndarray | None = None,
    out_size: tuple[int, int] | None = None,
    colormap: str = "inferno",
) -> np.ndarray:
    """Blend a coloured anomaly map over an image and outline the ground truth.

    Args:
        image: (H, W, 3) uint8 RGB (the original image).
        heat: (h, w) float anomaly map, larger = more anomalous.
        vmin, vmax: heat values mapped to the colormap's bottom and top colours (values outside
            are clipped), e.g. quantiles of the maps on good images; ``vmax > vmin``.
        alpha: weight of the heat colour; 0 shows the image only.
        mask: (H0, W0) ground truth (nonzero = defect) at any resolution, or None.
        out_size: (H', W') of the output; None = the image's (H, W).
        colormap: a key of :data:`COLORMAPS`.

    Returns:
        (H', W', 3) uint8: ``(1 - alpha) image + alpha colour(heat)``, heat upsampled bilinearly,
        with the mask's contour (1 px, 2 px when a side >= 512) in :data:`CONTOUR_COLORS`.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    heat = np.asarray(heat, dtype=np.float32)
    if heat.ndim != 2:
        raise ValueError(f"heat must be (h, w), got {heat.shape}")
    if not (np.isfinite(vmin) and np.isfinite(vmax) and vmax > vmin):
        raise ValueError(f"overlay needs finite vmin < vmax, got vmin={vmin!r}, vmax={vmax!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    size = tuple(image.shape[:2]) if out_size is None else (int(out_size[0]), int(out_size[1]))

    scaled = np.clip((np.nan_to_num(heat, nan=vmin) - vmin) / (vmax - vmin), 0.0, 1.0).astype(np.float32)
    colour = apply_colormap(_resize(scaled, size, Image.Resampling.BILINEAR), colormap)
    base = _resize(image, size, Image.Resampling.BILINEAR)
    out = np.round((1.0 - alpha) * base + alpha * colour).astype(np.uint8)
    if mask is not None:
        gt = _resize((np.asarray(mask) != 0).astype(np.uint8) * 255, size, Image.Resampling.NEAREST) > 127
        out[mask_contour(gt, width=2 if max(size) >= LARGE_SIDE else 1)] = CONTOUR_COLORS[colormap]
    return out


def add_colorbar(overlay: np.ndarray, colormap: str = "inferno") -> np.ndarray:
    """``overlay`` (H, W, 3) uint8 with :func:`colorbar` to its right: what the colours mean."""
    overlay = np.asarray(overlay)
    if overlay.dtype != np.uint8 or overlay.ndim != 3 or overlay.shape[2] != 3:
        raise ValueError(f"overlay must be (H, W, 3) uint8, got {overlay.shape} {overlay.dtype}")
    return np.concatenate([overlay, colorbar(overlay.shape[0], colormap)], axis=1)


def colorbar(height: int, colormap: str = "inferno") -> np.ndarray:
    """A colour scale (height, w, 3) uint8 for the overlays of :func:`overlay_heatmap`.

    The scale is the pixel score on the 0-1000 scale of the scores (100 = the pixel threshold,
    flagged on the target false-alarm rate of calibration pixels; 0 = the median good pixel),
    drawn from 0 to :data:`SCALE_TOP` as :func:`overlay_heatmap` colours it with the bundle's
    ``map_vmin`` / ``map_vmax``; the threshold is marked with a line.
    """
    font_size = int(np.clip(height // 18, 9, 22))
    bar_width = max(8, font_size)
    width = bar_width + 4 * font_size + 6
    panel = Image.new("RGB", (width, height), (255, 255, 255))
    margin = font_size  # room for the top and bottom labels
    span = max(height - 2 * margin, 2)
    levels = np.linspace(1.0, 0.0, span)[:, None].repeat(bar_width, axis=1)
    panel.paste(Image.fromarray(apply_colormap(levels, colormap)), (3, margin))
    draw = ImageDraw.Draw(panel)
    font = ImageFont.load_default(size=font_size)
    left = bar_width + 6

    def row(value: float) -> int:
        return margin + round((1.0 - value / SCALE_TOP) * (span - 1))

    y = row(THRESHOLD_MARK)
    draw.line([(0, y), (bar_width + 5, y)], fill=CONTOUR_COLORS.get(colormap, (0, 255, 255)), width=2)
    draw.line([(0, y + 2), (bar_width + 5, y + 2)], fill=(0, 0, 0), width=1)
    labels = ((SCALE_TOP, f"{SCALE_TOP}+"), (THRESHOLD_MARK, f"{THRESHOLD_MARK} thr"), (0, "0"))
    for value, text in labels:
        draw.text((left, row(value)), text, fill=(0, 0, 0), font=font, anchor="lm")
    return np.asarray(panel)


def save_png(array: np.ndarray, path: str | Path) -> Path:
    """Write (H, W, 3) or (H, W) uint8 ``array`` as a PNG, creating parent folders; returns the path."""
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ValueError(f"save_png needs (H, W) or (H, W, 3) uint8, got {array.shape} {array.dtype}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")
    return path
