"""Fixed 2-D sinusoidal position code of a patch (Transformer-style, one half per axis).

For a position (i, j) on an H x W grid and ``dim = 4 F``, with frequencies
omega_f = 10000^(-2f / (2F)), f = 0..F-1:

    code(i, j) = [sin(i w_0), cos(i w_0), ..., sin(i w_{F-1}), cos(i w_{F-1}),   # rows, 2F dims
                  sin(j w_0), cos(j w_0), ..., sin(j w_{F-1}), cos(j w_{F-1})]   # cols, 2F dims

as in the MSMA reference (``dim = 128``: 64 dims from the row, 64 from the column). Positions are
integer grid indices, so a code only means the same place on grids of the same size.
"""

from __future__ import annotations

import torch

from diffad.core.errors import ConfigError


def axis_encoding(length: int, dim: int) -> torch.Tensor:
    """Sinusoidal code of positions ``0..length-1`` along one axis: (length, dim), sin/cos interleaved."""
    freqs = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # omega_f, (dim/2,)
    angles = torch.arange(length, dtype=torch.float64)[:, None] * freqs[None, :]
    return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2).to(torch.float32)


def positional_encoding_2d(height: int, width: int, dim: int = 128) -> torch.Tensor:
    """Position codes of an ``height x width`` grid, row-major: (height * width, dim) float32.

    Row ``i * width + j`` is the code of position (i, j); ``dim`` must be a multiple of 4.
    """
    if dim <= 0 or dim % 4:
        raise ConfigError(f"msma_flow.pos_dim: {dim} is not a positive multiple of 4")
    if height < 1 or width < 1:
        raise ValueError(f"grid {height}x{width} is empty")
    half = dim // 2
    rows = axis_encoding(height, half)[:, None, :].expand(height, width, half)
    cols = axis_encoding(width, half)[None, :, :].expand(height, width, half)
    return torch.cat((rows, cols), dim=-1).reshape(height * width, dim)
