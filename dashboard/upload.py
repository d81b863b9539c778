"""Reading an uploaded image: type, size and pixel-count limits, then the library's own reader.

The pixels come from :func:`diffad.data.images.read_image_bytes`, the reader ``convert_dataset``
and ``diffad predict`` use, so an upload scores exactly as the same file does on the command line
(16-bit, alpha, CMYK and EXIF orientation included). One clear message per failure.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from diffad.data.images import BadInputError, ImageTooLarge, read_image_bytes

TYPES = ("png", "jpg", "jpeg", "bmp", "tif", "tiff")
MAX_MB = 20
MAX_BYTES = MAX_MB * 1024 * 1024
MAX_PIXELS = 40_000_000  # decoding is what costs memory; a 20 MB PNG can hold far more pixels


def read_upload(name: str, content: bytes) -> tuple[Image.Image | None, str | None]:
    """(RGB image, None) or (None, a message naming the file and the problem)."""
    suffix = Path(name).suffix.lower().lstrip(".")
    if suffix not in TYPES:
        return None, f"`{name}`: .{suffix or '?'} files are not accepted; use {', '.join(TYPES)}."
    if len(content) > MAX_BYTES:
        return None, f"`{name}` is {len(content) / 2**20:.1f} MB; the limit is {MAX_MB} MB."
    if not content:
        return None, f"`{name}` is empty."
    try:
        return read_image_bytes(content, name, max_pixels=MAX_PIXELS), None
    except ImageTooLarge as exc:
        return None, f"`{name}` was not decoded: {exc.reason}."
    except BadInputError as exc:
        return None, f"`{name}` could not be read as a {suffix.upper()} image: {exc.reason}."
