"""Mistake selection and the captioned montage."""

import numpy as np

from diffad.viz.montage import mistake_montage, select_mistakes


def test_select_mistakes_orders_worst_first():
    labels = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.9, 0.2, 0.7, 0.1, 0.8, 0.3])
    fp, miss = select_mistakes(labels, scores, threshold=0.5, k=5)
    assert list(fp) == [0, 2]  # good images above the threshold, highest first
    assert list(miss) == [3, 5]  # anomalies below it, lowest first
    fp1, miss1 = select_mistakes(labels, scores, threshold=0.5, k=1)
    assert list(fp1) == [0] and list(miss1) == [3]


def test_montage_layout_places_tiles_and_captions():
    red = np.zeros((20, 30, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((10, 10, 3), np.uint8)
    blue[..., 2] = 255
    tiles = [(red, "FP good/001 score 812"), (blue, "miss"), (red, "a very long caption that must wrap")]
    out = mistake_montage(tiles, columns=2)
    assert out.dtype == np.uint8 and out.ndim == 3
    red_px = np.all(out == (255, 0, 0), axis=-1)
    blue_px = np.all(out == (0, 0, 255), axis=-1)
    assert red_px.sum() == 2 * 20 * 30 and blue_px.sum() == 10 * 10
    # two rows: the third tile sits below the first
    rows = np.flatnonzero(red_px.any(axis=1))
    assert rows.max() - rows.min() > 2 * 20
    # captions are drawn: dark text pixels outside the tiles
    text = np.all(out < 80, axis=-1) & ~red_px & ~blue_px
    assert text.sum() > 20
    assert out.shape[1] < 3 * 30  # wrapped, not widened by the long caption


def test_empty_montage_is_a_small_panel():
    out = mistake_montage([], columns=4)
    assert out.shape[2] == 3 and np.any(out < 80)


def test_a_title_says_above_the_grid_that_it_shows_a_subset():
    """issue 23: reports/mistakes/<method>.png showed 9 of 16 mistakes without saying so."""
    tile = np.full((20, 30, 3), 200, np.uint8)
    plain = mistake_montage([(tile, "miss")], columns=2)
    titled = mistake_montage([(tile, "miss")], columns=2, title="padim: the worst 4 of 9 false positives")
    assert titled.shape[1] == plain.shape[1] and titled.shape[0] > plain.shape[0]
    extra = titled.shape[0] - plain.shape[0]
    assert np.any(titled[:extra] < 80)  # dark title text above the grid
    np.testing.assert_array_equal(titled[extra:], plain)  # the grid itself unchanged, moved down
