"""Robust image and mask reading: every PIL mode a user may have, and clear errors for bad files.

Each source file is read once as bytes (hashed for the manifest), decoded fully (so truncated
files fail here, not later), EXIF-rotated, and converted:

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

from diffad.errors import DataError

ALPHA_MODES = ("LA", "La", "RGBA", "RGBa", "PA")
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# Files a file browser leaves behind; never images, never worth an error.
IGNORED_FILES = frozenset({"Thumbs.db", "desktop.ini"})


class BadInputError(DataError):
    """A single file cannot be used. ``path`` and ``reason`` feed the ``skipped`` report."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class SourceFile:
    """One decoded source file: the image as PIL opened it (EXIF-rotated), and its identity."""

    image: Image.Image  # original mode
    mode: str  # PIL mode of the source, kept in the manifest
    sha256: str  # hex digest of the file's bytes


def is_ignored(path: Path) -> bool:
    """Hidden files and OS litter are not part of a dataset."""
    return path.name.startswith(".") or path.name in IGNORED_FILES


def load_file(path: str | Path) -> SourceFile:
    """Read, hash and fully decode ``path``; raise :class:`BadInputError` naming it otherwise."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInputError(path, f"cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise BadInputError(path, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # PIL warns about palette transparency in bytes; it is handled below.
            warnings.simplefilter("ignore", UserWarning)
            image = Image.open(io.BytesIO(data))
            image.load()  # decode everything now: truncated data fails here
            mode = image.mode
            image = ImageOps.exif_transpose(image)
    except UnidentifiedImageError:
        raise BadInputError(path, "not an image file PIL can read") from None
    except Image.DecompressionBombError as exc:
        raise BadInputError(path, f"image too large ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise BadInputError(path, f"corrupt or truncated image ({exc})") from None
    return SourceFile(image=image, mode=mode, sha256=hashlib.sha256(data).hexdigest())


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


def read_image(path: str | Path) -> Image.Image:
    """The image at ``path`` as 8-bit RGB, EXIF-rotated. Raises :class:`BadInputError`."""
    return to_rgb(load_file(path).image, path)


def read_mask(path: str | Path) -> Image.Image:
    """The mask at ``path`` as mode ``L`` with values {0, 255}. Raises :class:`BadInputError`."""
    return binarize_mask(load_file(path).image, path)
