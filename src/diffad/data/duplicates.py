"""Near-duplicate test images of train images: the perceptual half of the leak checks.

A file hash misses a re-saved copy and a pixel hash misses a re-encoded one (JPEG, resized,
colour-managed). What the model sees is the prepared image, so two prepared images count as
near-duplicates when they differ by at most ``max_rms`` in root-mean-square over [0, 1] pixels,
compared at no more than ``COMPARE_SIDE`` px (BOX-downsampled, which averages encoding noise):

    d(a, b) = sqrt(mean((a - b)^2)),   near-duplicate  <=>  d <= max_rms

The default 0.01 (40 dB PSNR) catches JPEG re-encodes down to quality ~75 at 32 px, while distinct
images of the fixed-pose demo washer are >= 0.015 apart at 32 px (0.04 for the fabric).
Distances come from one matrix product per chunk,
||a||^2 + ||b||^2 - 2 a.b, so thousands of images take seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

COMPARE_SIDE = 64  # px; prepared images larger than this are BOX-downsampled for the comparison
CHUNK = 256  # test images per matrix product


def near_train_duplicates(root: Path, manifest: pd.DataFrame, max_rms: float) -> dict[str, str]:
    """Test image path -> its nearest train image path, for every test image within ``max_rms``.

    ``root`` is the prepared dataset folder the manifest's paths are relative to.
    """
    if max_rms <= 0 or not {"split", "path"} <= set(manifest.columns):
        return {}
    train = manifest[manifest["split"] == "train"]["path"].tolist()
    test = manifest[manifest["split"] == "test"]["path"].tolist()
    if not train or not test:
        return {}
    a = _pixels(root, train)
    a_sq = (a * a).sum(1)
    found: dict[str, str] = {}
    for start in range(0, len(test), CHUNK):
        names = test[start : start + CHUNK]
        b = _pixels(root, names)
        d2 = a_sq[None, :] + (b * b).sum(1)[:, None] - 2.0 * b @ a.T  # (test, train)
        rms = np.sqrt(np.maximum(d2, 0.0) / a.shape[1])
        nearest = rms.argmin(1)
        for i, name in enumerate(names):
            if rms[i, nearest[i]] <= max_rms:
                found[name] = train[nearest[i]]
    return found


def _pixels(root: Path, paths: list[str]) -> np.ndarray:
    """(N, D) float64 in [0, 1]: the prepared RGB images, at most COMPARE_SIDE px a side."""
    rows = []
    for relative in paths:
        with Image.open(root / relative) as image:
            image = image.convert("RGB")
            if max(image.size) > COMPARE_SIDE:
                image = image.resize((COMPARE_SIDE, COMPARE_SIDE), resample=Image.Resampling.BOX)
            rows.append(np.asarray(image, dtype=np.float64).reshape(-1) / 255.0)
    return np.stack(rows)
