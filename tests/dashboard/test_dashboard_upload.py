"""Reading uploads: accepted types, size and pixel limits, and a clear message for unreadable files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dashboard import upload


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "fmt,name", [("PNG", "a.PNG"), ("JPEG", "b.jpg"), ("BMP", "c.bmp"), ("TIFF", "d.tif")]
)
def test_accepted_formats_decode_to_rgb(fmt: str, name: str) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.full((5, 7), 200, np.uint8)).save(buffer, format=fmt)  # grayscale source
    image, problem = upload.read_upload(name, buffer.getvalue())
    assert problem is None and image.mode == "RGB" and image.size == (7, 5)


def test_other_types_are_refused_by_name() -> None:
    image, problem = upload.read_upload("notes.gif", b"GIF89a")
    assert image is None and "notes.gif" in problem and ".gif" in problem


def test_too_large_file_is_refused_before_decoding() -> None:
    image, problem = upload.read_upload("big.png", b"\0" * (upload.MAX_BYTES + 1))
    assert image is None and f"{upload.MAX_MB} MB" in problem


def test_too_many_pixels_are_refused() -> None:
    side = int(upload.MAX_PIXELS**0.5) + 1  # a 1-bit blank image compresses to a few kB
    content = _png(np.zeros((side, side), bool))
    assert len(content) < upload.MAX_BYTES
    image, problem = upload.read_upload("huge.png", content)
    assert image is None and "megapixels" in problem


@pytest.mark.parametrize("content,expected", [(b"this is not an image", "could not be read"), (b"", "empty")])
def test_unreadable_files_get_a_message(content: bytes, expected: str) -> None:
    image, problem = upload.read_upload("x.png", content)
    assert image is None and expected in problem and "x.png" in problem


def test_truncated_image_gets_a_message() -> None:
    rng = np.random.default_rng(0)
    content = _png(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    image, problem = upload.read_upload("cut.png", content[: len(content) // 2])
    assert image is None and "cut.png" in problem
