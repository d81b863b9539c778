"""The awkward image files of the reader-parity tests (a helper module, not tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def awkward_images(folder: Path, rng: np.random.Generator) -> list[Path]:
    """16-bit, RGBA, CMYK, grey, palette (+ transparency), EXIF-rotated, non-square and huge files."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8))
    ramp = np.linspace(0, 65535, 48 * 40).reshape(48, 40).astype(np.uint16)
    alpha = np.linspace(0, 255, 48 * 40).reshape(48, 40).astype(np.uint8)
    files = {
        "gray16.png": Image.fromarray(ramp),
        "rgba.png": Image.fromarray(np.dstack([np.asarray(rgb), alpha]), "RGBA"),
        "cmyk.jpg": rgb.convert("CMYK"),
        "gray.png": rgb.convert("L"),
        "palette.png": rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16),
        "nonsquare.png": rgb.resize((90, 30)),
        "huge.png": rgb.resize((3000, 2000), Image.Resampling.NEAREST),
    }
    for name, image in files.items():
        image.save(folder / name)
    transparent = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    transparent.info["transparency"] = 3
    transparent.save(folder / "palette_transparent.png", transparency=3)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    rgb.resize((40, 24)).save(folder / "exif_rotated.jpg", exif=exif.tobytes())
    return sorted(folder.iterdir())
