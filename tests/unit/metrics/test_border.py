"""border_peak_share: where a map's maximum lies."""

from __future__ import annotations

import numpy as np
import pytest

from diffad.metrics.border import border_peak_share
from diffad.metrics.inputs import MetricInputError


def test_counts_peaks_in_the_band_only():
    maps = np.zeros((4, 50, 50), np.float32)
    maps[0, 0, 25] = 1  # top edge
    maps[1, 25, 46] = 1  # 4 px from the right edge: inside the 8 % (4 px) band
    maps[2, 25, 45] = 1  # 5 px from it: outside
    maps[3, 25, 25] = 1  # centre
    assert border_peak_share(maps) == 0.5
    assert border_peak_share(maps, fraction=0.12) == 0.75


def test_random_maps_peak_in_the_band_as_often_as_its_area():
    maps = np.random.default_rng(0).random((4000, 25, 25))
    band_area = 1 - (1 - 2 * 2 / 25) ** 2  # 2-px band of a 25-px side
    assert border_peak_share(maps) == pytest.approx(band_area, abs=0.03)


@pytest.mark.parametrize("maps", [np.zeros((0, 4, 4)), np.zeros((4, 4))])
def test_rejects_what_is_not_a_stack_of_maps(maps):
    with pytest.raises(MetricInputError, match="border peaks"):
        border_peak_share(maps)
