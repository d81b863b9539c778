"""Geometry from source size to the prepared square: hand-computed cases, ADM parity, mask alignment."""

import numpy as np
import pytest
import torch
from PIL import Image

from diffad.core.errors import ConfigError
from diffad.data.transforms import plan_geometry, prepare_image, prepare_mask, to_model_input, to_tensor


def adm_center_crop(image: Image.Image, size: int) -> np.ndarray:
    """guided-diffusion's center_crop_arr, transcribed as the reference."""
    while min(*image.size) >= 2 * size:
        image = image.resize(tuple(x // 2 for x in image.size), resample=Image.BOX)
    scale = size / min(*image.size)
    image = image.resize(tuple(round(x * scale) for x in image.size), resample=Image.BICUBIC)
    arr = np.array(image)
    crop_y, crop_x = (arr.shape[0] - size) // 2, (arr.shape[1] - size) // 2
    return arr[crop_y : crop_y + size, crop_x : crop_x + size]


def checkerboard(width: int, height: int, block: int = 1) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width] // block
    return Image.fromarray(np.where((x + y) % 2 == 1, 255, 0).astype(np.uint8), "L")


def test_geometry_hand_computed_landscape_and_portrait():
    # 1024x768 -> 64: halve to 512x384, 256x192, 128x96 (96 < 128 stops); scale 64/96 -> 85x64;
    # crop left (85 - 64) // 2 = 10.
    g = plan_geometry((1024, 768), 64, "center-crop-dhariwal")
    assert g.halvings == ((512, 384), (256, 192), (128, 96))
    assert g.scaled == (85, 64)
    assert g.crop == (10, 0, 74, 64)
    # 700x1000 -> 64: 350x500, 175x250, 87x125; scale 64/87 -> 64 x round(91.95) = 92; top 14.
    g = plan_geometry((700, 1000), 64, "center-crop-dhariwal")
    assert g.halvings == ((350, 500), (175, 250), (87, 125))
    assert g.scaled == (64, 92)
    assert g.crop == (0, 14, 64, 78)
    assert plan_geometry((700, 1000), 64, "resize").crop == (0, 0, 64, 64)


def test_unknown_transform_is_a_config_error():
    with pytest.raises(ConfigError, match="data.transform"):
        plan_geometry((10, 10), 4, "squash")


def test_center_crop_of_a_4x2_checkerboard_keeps_the_middle_columns():
    # No halving (2 < 4), scale 1, crop x from (4 - 2) // 2 = 1: columns 1 and 2.
    out = np.asarray(prepare_image(checkerboard(4, 2), 2, "center-crop-dhariwal"))
    np.testing.assert_array_equal(out, [[255, 0], [0, 255]])


def test_box_halving_of_a_blocky_checkerboard_is_exact():
    # 8x4 of 2x2 blocks -> one BOX halving averages whole blocks -> the 4x2 checkerboard above.
    out = np.asarray(prepare_image(checkerboard(8, 4, block=2), 2, "center-crop-dhariwal"))
    np.testing.assert_array_equal(out, [[255, 0], [0, 255]])


@pytest.mark.parametrize("size", [(5, 3), (9, 7), (33, 64), (130, 61), (257, 129), (100, 100)])
@pytest.mark.parametrize("resolution", [2, 3, 16])
def test_center_crop_matches_adm_exactly(size, resolution):
    rng = np.random.default_rng(size[0] * 1000 + size[1])
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    out = np.asarray(prepare_image(image, resolution, "center-crop-dhariwal"))
    assert out.shape == (resolution, resolution, 3)
    np.testing.assert_array_equal(out, adm_center_crop(image, resolution))


def test_resize_ignores_aspect_ratio():
    array = np.zeros((20, 40), np.uint8)
    array[:, :20] = 255  # left half white
    out = np.asarray(prepare_image(Image.fromarray(array), 8, "resize"))
    assert out.shape == (8, 8)
    assert (out[:, :3] > 240).all() and (out[:, 5:] < 15).all()


def test_mask_lands_exactly_where_the_image_square_is():
    # 128x64 -> 16: two halvings (x4), scale 1, crop left 8. A square at x 40..72, y 16..48 maps to
    # x 10..18 -> 2..10 after the crop, y 4..12: block-aligned, so the image is exactly 255 there.
    image = np.zeros((64, 128), np.uint8)
    image[16:48, 40:72] = 255
    mask = Image.fromarray(image.copy())
    img_out = np.asarray(prepare_image(Image.fromarray(image), 16, "center-crop-dhariwal"))
    mask_out = np.asarray(prepare_mask(mask, 16, "center-crop-dhariwal"))
    expected = np.zeros((16, 16), np.uint8)
    expected[4:12, 2:10] = 255
    np.testing.assert_array_equal(img_out, expected)
    np.testing.assert_array_equal(mask_out, expected)


@pytest.mark.parametrize("transform", ["center-crop-dhariwal", "resize"])
@pytest.mark.parametrize("size,resolution", [((101, 77), 16), ((37, 53), 24), ((300, 200), 32)])
def test_mask_stays_binary_and_aligned_on_odd_sizes(transform, size, resolution):
    width, height = size
    image = np.zeros((height, width), np.uint8)
    top, left = height // 4, width // 3
    image[top : top + height // 2, left : left + width // 3] = 255
    img_out = np.asarray(prepare_image(Image.fromarray(image), resolution, transform))
    mask_out = np.asarray(prepare_mask(Image.fromarray(image), resolution, transform))
    assert set(np.unique(mask_out)) <= {0, 255}
    inside, bright = mask_out == 255, img_out > 127
    iou = (inside & bright).sum() / (inside | bright).sum()
    assert iou > 0.75
    # Disagreement only on the square's edge: every mismatching pixel is grey in the image.
    mismatch = inside != bright
    assert ((img_out[mismatch] > 10) & (img_out[mismatch] < 245)).all()


def test_to_tensor_scales_uint8_to_minus_one_one():
    pixels = np.array([[[0, 255, 51]]], np.uint8)
    tensor = to_tensor(pixels)
    assert tensor.shape == (1, 3, 1, 1) and tensor.dtype == torch.float32
    torch.testing.assert_close(tensor.flatten(), torch.tensor([-1.0, 1.0, 51 / 127.5 - 1]))


def test_to_model_input_reads_16_bit_files_scaled_not_clipped(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((8, 8), 257 * 100, np.uint16)).save(path)
    tensor = to_model_input(path, 4, "resize")
    assert tensor.shape == (1, 3, 4, 4)
    torch.testing.assert_close(tensor, torch.full((1, 3, 4, 4), 100 / 127.5 - 1))
