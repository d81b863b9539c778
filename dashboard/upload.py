"""Reading an uploaded image safely: size, type and pixel-count limits, one clear message per failure."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

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
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(content))
            width, height = image.size
            if width * height > MAX_PIXELS:
                return (
                    None,
                    f"`{name}` is {width}×{height} pixels; the limit is {MAX_PIXELS / 1e6:.0f} megapixels.",
                )
            image.load()
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        return (
            None,
            f"`{name}` could not be read as an image ({exc.__class__.__name__}). "
            f"Is it really a {suffix.upper()}?",
        )
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data, odd modes
        return None, f"`{name}` could not be decoded: {exc}"
    return image.convert("RGB"), None
