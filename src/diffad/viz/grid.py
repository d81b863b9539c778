"""Image grids: a batch of images in [-1, 1] as one PNG (e.g. the denoiser's samples)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from diffad.viz.heatmap import save_png


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] (C = 1 or 3) -> (N, H, W, 3) uint8, values outside clipped."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, 1|3, H, W), got {tuple(images.shape)}")
    x = ((images.detach().to(torch.float32).cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    return x.permute(0, 2, 3, 1).numpy()


def image_grid(images: torch.Tensor, columns: int | None = None, pad: int = 2, fill: int = 255) -> np.ndarray:
    """Tile ``images`` (N, C, H, W) in [-1, 1] row by row into one (H', W', 3) uint8 array.

    ``columns``: images per row (default: ceil(sqrt(N))); ``pad`` pixels of ``fill`` between and
    around the tiles.
    """
    tiles = to_uint8(images)
    n, h, w, _ = tiles.shape
    if n == 0:
        raise ValueError("image_grid needs at least one image")
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), fill, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top : top + h, left : left + w] = tile
    return grid


def save_grid(images: torch.Tensor, path: str | Path, columns: int | None = None) -> Path:
    """Write :func:`image_grid` of ``images`` as a PNG at ``path``; returns the path."""
    return save_png(image_grid(images, columns), path)
