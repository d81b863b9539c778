"""The 2-D sinusoidal position code: layout, values and uniqueness."""

from __future__ import annotations

import math

import pytest
import torch

from diffad.core.errors import ConfigError
from diffad.methods.msma_flow.position import positional_encoding_2d


def test_row_half_depends_on_row_and_column_half_on_column() -> None:
    h, w, dim = 5, 7, 16
    code = positional_encoding_2d(h, w, dim).reshape(h, w, dim)
    assert code.shape == (h, w, dim)
    rows, cols = code[..., : dim // 2], code[..., dim // 2 :]
    assert torch.equal(rows, rows[:, :1].expand_as(rows))  # same along a row
    assert torch.equal(cols, cols[:1].expand_as(cols))  # same along a column
    # first frequency is 1: (sin i, cos i) for the row, (sin j, cos j) for the column
    assert code[3, 4, 0].item() == pytest.approx(math.sin(3)) and code[3, 4, 1].item() == pytest.approx(
        math.cos(3)
    )
    assert code[3, 4, 8].item() == pytest.approx(math.sin(4)) and code[3, 4, 9].item() == pytest.approx(
        math.cos(4)
    )
    # second frequency 10000^(-2/8) = 0.1
    assert code[3, 4, 2].item() == pytest.approx(math.sin(0.3), abs=1e-6)


def test_codes_are_distinct_and_row_major() -> None:
    h, w = 6, 9
    code = positional_encoding_2d(h, w, 128)
    assert code.shape == (h * w, 128) and code.dtype == torch.float32
    assert torch.cdist(code, code).add(torch.eye(h * w) * 1e3).min() > 0.1
    # row-major: index i * w + j holds (i, j); its column part equals the code of (0, j)
    torch.testing.assert_close(code[2 * w + 5, 64:], code[5, 64:])


def test_dim_must_be_a_multiple_of_four() -> None:
    with pytest.raises(ConfigError, match="pos_dim"):
        positional_encoding_2d(4, 4, 18)
