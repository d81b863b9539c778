"""Heatmap overlays: size, colormap extremes, contour on the mask boundary, PNG round trip."""

import numpy as np
import pytest
from PIL import Image

from diffad.viz.heatmap import CONTOUR_COLORS, apply_colormap, mask_contour, overlay_heatmap, save_png


def test_colormap_ends_are_the_tables_ends():
    out = apply_colormap(np.array([0.0, 1.0, 2.0]))  # 2.0 is clipped to the top
    np.testing.assert_array_equal(out, [[0, 0, 4], [252, 255, 164], [252, 255, 164]])
    assert tuple(apply_colormap(np.array(0.0), "jet")) == (0, 0, 128)
    with pytest.raises(ValueError, match="unknown colormap"):
        apply_colormap(np.zeros(2), "viridis")


def test_output_size_and_hottest_region_gets_top_colour():
    image = np.full((20, 30, 3), 128, dtype=np.uint8)
    heat = np.zeros((5, 5))
    heat[1:4, 1:4] = 10.0  # a blob, centre far from the edges after upsampling
    out = overlay_heatmap(image, heat, vmin=0.0, vmax=5.0, alpha=1.0, out_size=(40, 50))
    assert out.shape == (40, 50, 3) and out.dtype == np.uint8
    assert tuple(out[20, 25]) == (252, 255, 164)  # clipped above vmax -> top colour
    assert tuple(out[0, 0]) == (0, 0, 4)  # cold corner -> bottom colour


def test_alpha_zero_keeps_the_image():
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    out = overlay_heatmap(image, np.random.default_rng(1).random((4, 4)), vmin=0, vmax=1, alpha=0.0)
    np.testing.assert_array_equal(out, image)


def test_contour_pixels_lie_on_the_mask_boundary():
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), dtype=bool)
    mask[8:20, 10:24] = True
    out = overlay_heatmap(image, np.zeros((8, 8)), vmin=0, vmax=1, alpha=0.5, mask=mask)
    drawn = np.all(out == CONTOUR_COLORS["inferno"], axis=-1)
    outside = ~mask
    neighbour_outside = np.zeros_like(mask)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            neighbour_outside |= np.roll(np.roll(outside, dy, 0), dx, 1)
    assert drawn.any()
    assert np.all(mask[drawn]) and np.all(neighbour_outside[drawn])  # inside, next to outside
    assert drawn.sum() == 2 * (12 + 14) - 4  # the full 1-px rectangle outline


def test_contour_is_two_pixels_at_large_sizes_and_mask_is_resized():
    mask = np.zeros((16, 16), dtype=bool)
    mask[4:12, 4:12] = True
    out = overlay_heatmap(
        np.zeros((16, 16, 3), np.uint8), np.zeros((4, 4)), vmin=0, vmax=1, mask=mask, out_size=(512, 512)
    )
    drawn = np.all(out == CONTOUR_COLORS["inferno"], axis=-1)
    # mask scaled x32 -> square [128, 384); a 2-px inner outline
    assert drawn[128, 200] and drawn[129, 200] and not drawn[130, 200] and not drawn[127, 200]


def test_mask_contour_closes_at_the_border():
    mask = np.zeros((6, 6), dtype=bool)
    mask[:3, :3] = True
    contour = mask_contour(mask)
    assert contour[0, 1] and contour[1, 0] and not contour[1, 1]


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="vmin < vmax"):
        overlay_heatmap(np.zeros((4, 4, 3), np.uint8), np.zeros((2, 2)), vmin=1.0, vmax=1.0)
    with pytest.raises(ValueError, match="uint8"):
        overlay_heatmap(np.zeros((4, 4, 3)), np.zeros((2, 2)), vmin=0.0, vmax=1.0)


def test_save_png_round_trip(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    path = save_png(array, tmp_path / "a" / "b.png")
    np.testing.assert_array_equal(np.asarray(Image.open(path)), array)
    with pytest.raises(ValueError, match="uint8"):
        save_png(array.astype(float), tmp_path / "c.png")
