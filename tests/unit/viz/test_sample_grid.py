"""Sample grids: layout, value mapping and the PNG file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from diffad.viz.grid import image_grid, save_grid


def test_grid_places_tiles_row_by_row_with_padding() -> None:
    images = torch.stack([torch.full((3, 4, 5), v) for v in (-1.0, 0.0, 1.0)])  # 3 images, 4 x 5
    grid = image_grid(images, columns=2, pad=1, fill=7)
    assert grid.shape == (2 * (4 + 1) + 1, 2 * (5 + 1) + 1, 3)
    assert (grid[1:5, 1:6] == 0).all()  # -1 -> 0
    assert (grid[1:5, 7:12] == 128).all()  # 0 -> 127.5, rounded half to even
    assert (grid[6:10, 1:6] == 255).all()  # +1 -> 255
    assert (grid[6:10, 7:12] == 7).all()  # empty cell keeps the fill
    assert (grid[0] == 7).all() and (grid[:, 6] == 7).all()


def test_values_are_clipped_and_gray_is_replicated(tmp_path: Path) -> None:
    images = torch.tensor([[[[5.0, -5.0]]]])  # (1, 1, 1, 2)
    grid = image_grid(images, pad=0)
    np.testing.assert_array_equal(grid, [[[255, 255, 255], [0, 0, 0]]])
    path = save_grid(torch.zeros(5, 3, 8, 8), tmp_path / "s" / "grid.png")
    with Image.open(path) as png:
        assert png.size == (3 * 10 + 2, 2 * 10 + 2)  # default: ceil(sqrt(5)) = 3 columns
