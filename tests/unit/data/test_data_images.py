"""Every input mode a user may have becomes the right 8-bit RGB; bad files raise errors naming them."""

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from diffad.core.errors import DataError
from diffad.data.images import BadInputError, load_file, read_image, read_mask, to_rgb


def pixels(path) -> np.ndarray:
    return np.asarray(read_image(path)).astype(int)


def test_rgb_is_unchanged_and_hashed(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    path = tmp_path / "rgb.png"
    Image.fromarray(array).save(path)
    np.testing.assert_array_equal(pixels(path), array)
    assert load_file(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_grayscale_is_replicated(tmp_path):
    path = tmp_path / "l.png"
    Image.new("L", (3, 2), 77).save(path)
    image = read_image(path)
    assert image.mode == "RGB"
    assert (pixels(path) == 77).all()
    assert load_file(path).mode == "L"


def test_one_bit_becomes_black_and_white(tmp_path):
    path = tmp_path / "bits.png"
    bits = Image.new("1", (4, 1), 0)
    bits.putpixel((2, 0), 1)
    bits.save(path)
    np.testing.assert_array_equal(pixels(path)[0, :, 0], [0, 0, 255, 0])


def test_alpha_is_composited_over_black(tmp_path):
    la = tmp_path / "la.png"
    Image.new("LA", (2, 2), (200, 128)).save(la)
    assert (pixels(la) == round(200 * 128 / 255)).all()  # 100
    rgba = tmp_path / "rgba.png"
    image = Image.new("RGBA", (2, 1), (255, 0, 0, 0))  # hidden red, fully transparent
    image.putpixel((1, 0), (10, 20, 30, 255))
    image.save(rgba)
    np.testing.assert_array_equal(pixels(rgba)[0], [[0, 0, 0], [10, 20, 30]])


def test_palette_with_and_without_transparency(tmp_path):
    palette = [255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 6)
    image = Image.new("P", (2, 1), 0)
    image.putpalette(palette)
    image.putpixel((1, 0), 1)
    plain, transparent = tmp_path / "p.png", tmp_path / "pt.png"
    image.save(plain)
    image.save(transparent, transparency=0)  # index 0 (red) transparent
    np.testing.assert_array_equal(pixels(plain)[0], [[255, 0, 0], [0, 255, 0]])
    np.testing.assert_array_equal(pixels(transparent)[0], [[0, 0, 0], [0, 255, 0]])


def test_16_bit_png_is_scaled_to_8_bit_not_clipped(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 25700, 32896, 65535]], np.uint16)).save(path)
    assert load_file(path).mode.startswith("I;16")
    np.testing.assert_array_equal(pixels(path)[0, :, 0], [0, 100, 128, 255])


def test_32_bit_integer_tiff_holding_16_bit_values(tmp_path):
    path = tmp_path / "deep.tif"
    Image.fromarray(np.array([[0, 25700, 65535]], np.int32)).save(path)
    assert load_file(path).mode == "I"
    np.testing.assert_array_equal(pixels(path)[0, :, 0], [0, 100, 255])
    with pytest.raises(BadInputError, match="0..65535"):
        to_rgb(Image.fromarray(np.array([[70000]], np.int32)), "big.tif")


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(path, quality=95)  # no cyan/black: red
    assert load_file(path).mode == "CMYK"
    red = pixels(path)[4, 4]
    assert red[0] > 220 and red[1] < 40 and red[2] < 40


def test_exif_rotated_jpeg_is_shown_upright(tmp_path):
    array = np.zeros((8, 16, 3), np.uint8)
    array[:, :8] = 255  # left half white as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "rotated.jpg"
    Image.fromarray(array).save(path, exif=exif, quality=95)
    upright = pixels(path)
    assert upright.shape == (16, 8, 3)  # portrait after rotation
    assert upright[:6].mean() > 240 and upright[10:].mean() < 15  # stored left = displayed top


@pytest.mark.parametrize(
    "content,reason",
    [
        (b"", "empty file"),
        (b"this is a text file, not an image\n", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "corrupt|not an image"),
    ],
)
def test_bad_bytes_raise_errors_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(DataError, match=reason) as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_truncated_png_is_an_error(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
        buffer, "PNG"
    )
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(BadInputError, match="truncated") as info:
        read_image(path)
    assert info.value.path == str(path)


def test_masks_are_binarised_from_common_encodings(tmp_path):
    zero_one = tmp_path / "m01.png"
    Image.fromarray(np.array([[0, 1, 0]], np.uint8)).save(zero_one)
    noisy = tmp_path / "m255.png"
    Image.fromarray(np.array([[3, 250, 127, 128]], np.uint8)).save(noisy)
    deep = tmp_path / "m16.png"
    Image.fromarray(np.array([[0, 65535]], np.uint16)).save(deep)
    for path, expected in ((zero_one, [0, 255, 0]), (noisy, [0, 255, 0, 255]), (deep, [0, 255])):
        mask = read_mask(path)
        assert mask.mode == "L"
        np.testing.assert_array_equal(np.asarray(mask)[0], expected)
