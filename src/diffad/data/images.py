"""Robust image and mask reading: every PIL mode a user may have, and clear errors for bad files.

This is the one image reader of every entry point: ``convert_dataset`` (files), ``diffad predict``
(files) and the dashboard's upload (bytes) all go through :func:`decode`, so a 16-bit, RGBA,
CMYK or EXIF-rotated image gives the same pixels, hence the same score, in all three.

Each source is read once as bytes (hashed for the manifest), its size checked against the pixel
limit before any decoding (a decompression bomb is refused as :class:`ImageTooLarge`), decoded
fully (so truncated files fail here, not later), EXIF-rotated, and converted:

=================  ==========================================================================
source mode        RGB result
=================  ==========================================================================
RGB                unchanged
L, 1, P, CMYK, …   ``Image.convert("RGB")`` (grey replicated; CMYK via PIL's Adobe handling)
I;16*, I           16-bit grey scaled to 8 bit: ``round(v / 257)`` (0..65535 -> 0..255)
F                  float grey in [0, 1] scaled by 255
LA, RGBA, PA,      alpha-composited over black (``rgb * alpha / 255``), so hidden colour
P + transparency   values in fully transparent pixels never leak into the image
=================  ==========================================================================

Masks are read the same way as grey and binarised: any non-zero pixel is defect for 0/1 masks
(maximum <= 1), otherwise pixels >= 128 (so 0/255 masks with JPEG-like noise stay clean).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from diffad.core.errors import DataError

ALPHA_MODES = ("LA", "La", "RGBA", "RGBa", "PA")
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# Refused before decoding: 8-bit RGB at this size is ~0.5 GB (PIL only warns up to ~179 M pixels).
MAX_PIXELS = 150_000_000
ORIENTATION = 0x0112  # EXIF tag
# Files a file browser leaves behind; never images, never worth an error.
IGNORED_FILES = frozenset({"Thumbs.db", "desktop.ini"})


class BadInputError(DataError):
    """A single file cannot be used. ``path`` and ``reason`` feed the ``skipped`` report."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class ImageTooLarge(BadInputError):
    """More pixels than the reader's limit: refused before decoding (a decompression bomb)."""


def _too_large(name: str | Path, size: tuple[int, int], limit: int) -> ImageTooLarge:
    return ImageTooLarge(
        name,
        f"image too large: {size[0]}x{size[1]} = {size[0] * size[1] / 1e6:.0f} megapixels, the limit "
        f"is {limit / 1e6:.0f} (a decompression bomb, or a photo to downscale first)",
    )


@dataclass(frozen=True)
class SourceFile:
    """One decoded source file: the image as PIL opened it (EXIF-rotated), and its identity."""

    image: Image.Image  # original mode
    mode: str  # PIL mode of the source, kept in the manifest
    sha256: str  # hex digest of the file's bytes


def is_ignored(path: Path) -> bool:
    """Hidden files and OS litter are not part of a dataset."""
    return path.name.startswith(".") or path.name in IGNORED_FILES


def load_file(path: str | Path, max_pixels: int = MAX_PIXELS) -> SourceFile:
    """Read, hash and fully decode ``path``; raise :class:`BadInputError` naming it otherwise."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInputError(path, f"cannot read file ({exc.strerror or exc})") from None
    return decode(data, path, max_pixels)


def decode(data: bytes, name: str | Path, max_pixels: int = MAX_PIXELS) -> SourceFile:
    """Hash and fully decode the bytes of an image file called ``name`` (see the module docstring)."""
    if not data:
        raise BadInputError(name, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # PIL warns about palette transparency in bytes (handled in to_rgb) and about large
            # images (the explicit limit below decides, before any pixel is decoded).
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.size[0] * image.size[1] > max_pixels:
                raise _too_large(name, image.size, max_pixels)
            image.load()  # decode everything now: truncated data fails here
            mode = image.mode
            image = upright(image)
    except UnidentifiedImageError:
        raise BadInputError(name, "not an image file PIL can read") from None
    except Image.DecompressionBombError as exc:  # PIL's own limit, when max_pixels is above it
        raise ImageTooLarge(name, f"image too large (a decompression bomb: {exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise BadInputError(name, f"corrupt or truncated image ({exc})") from None
    return SourceFile(image=image, mode=mode, sha256=hashlib.sha256(data).hexdigest())


def upright(image: Image.Image) -> Image.Image:
    """``image`` rotated as its EXIF orientation says; the image itself (no copy) when upright."""
    if image.getexif().get(ORIENTATION, 1) in (0, 1):
        return image
    return ImageOps.exif_transpose(image)


def pixel_digest(image: Image.Image) -> str:
    """sha256 of decoded pixels, mode and size: equal for byte-different copies of one image."""
    header = f"{image.mode} {image.size[0]}x{image.size[1]}\n".encode()
    return hashlib.sha256(header + image.tobytes()).hexdigest()


def to_rgb(image: Image.Image, name: str | Path = "image") -> Image.Image:
    """Convert any supported PIL mode to 8-bit RGB (see the module table)."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in SIXTEEN_BIT_MODES or mode == "F":
        return Image.fromarray(gray8(image, name)).convert("RGB")
    if mode in ALPHA_MODES or (mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        rgb = rgba[..., :3] * (rgba[..., 3:] / 255.0)
        return Image.fromarray(np.round(rgb).astype(np.uint8), "RGB")
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise BadInputError(name, f"unsupported image mode {mode!r} ({exc})") from None


def gray8(image: Image.Image, name: str | Path = "image") -> np.ndarray:
    """One 8-bit grey channel ``(H, W) uint8``; 16-bit and float modes are scaled, not clipped."""
    mode = image.mode
    if mode in SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise BadInputError(name, f"mode {mode} values outside 0..65535 are not supported")
        return np.round(values / 257.0).astype(np.uint8)
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if values.size and not (np.isfinite(values).all() and values.min() >= 0.0 and values.max() <= 1.0):
            raise BadInputError(name, "float image values must lie in [0, 1]")
        return np.round(values * 255.0).astype(np.uint8)
    try:
        return np.asarray(image.convert("L"))
    except (ValueError, OSError) as exc:
        raise BadInputError(name, f"unsupported image mode {mode!r} ({exc})") from None


def binarize_mask(image: Image.Image, name: str | Path = "mask") -> Image.Image:
    """Mode ``L`` image with values {0, 255}; 255 = defect."""
    values = gray8(image, name)
    defect = values > 0 if values.max(initial=0) <= 1 else values >= 128
    return Image.fromarray(np.where(defect, 255, 0).astype(np.uint8), "L")


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """The image at ``path`` as 8-bit RGB, EXIF-rotated. Raises :class:`BadInputError`."""
    return to_rgb(load_file(path, max_pixels).image, path)


def read_image_bytes(data: bytes, name: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """:func:`read_image` for bytes already in memory (an upload) called ``name``."""
    return to_rgb(decode(data, name, max_pixels).image, name)


def read_mask(path: str | Path) -> Image.Image:
    """The mask at ``path`` as mode ``L`` with values {0, 255}. Raises :class:`BadInputError`."""
    return binarize_mask(load_file(path).image, path)
