"""The shared patch embedding and map post-processing of the baselines."""

from __future__ import annotations

import torch

from diffad.components.backbone_model import finish_maps, patch_embedding


def test_local_average_and_upsampling_on_a_hand_made_grid():
    shallow = torch.zeros(1, 1, 4, 4)
    shallow[0, 0, 1, 1] = 9.0
    deep = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)

    plain = patch_embedding([shallow, deep], pool=0, mode="nearest")
    assert plain.shape == (1, 2, 4, 4)
    assert torch.equal(plain[0, 0], shallow[0, 0])
    assert torch.equal(plain[0, 1], deep[0, 0].repeat_interleave(2, 0).repeat_interleave(2, 1))

    pooled = patch_embedding([shallow, deep], pool=3, mode="bilinear")[0, 0]
    expected = torch.zeros(4, 4)
    expected[0:3, 0:3] = 1.0  # the 9 spread evenly over its 3 x 3 neighbourhood
    assert torch.allclose(pooled, expected)


def test_maps_come_back_at_image_size_with_the_peak_kept():
    grid = torch.zeros(2, 8, 8)
    grid[0, 2, 5] = 1.0
    maps = finish_maps(grid, (64, 64), blur_sigma=4.0)
    assert maps.shape == (2, 64, 64)
    row, col = divmod(int(maps[0].argmax()), 64)
    assert abs(row - (2 * 8 + 3.5)) <= 1 and abs(col - (5 * 8 + 3.5)) <= 1  # centre of cell (2, 5)
    assert float(maps[1].abs().max()) == 0.0
