"""Read a prepared dataset (``convert_dataset`` output) for training and evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from diffad.core.errors import DataError
from diffad.data.manifest import CALIBRATION, INFO_NAME, MANIFEST_NAME, TRAIN, read_info, read_manifest
from diffad.data.transforms import to_tensor


class PreparedDataset:
    """The manifest, ``info.json`` and pixel access of ``data/prepared/``.

    Row selections are manifest slices (pandas keeps their index), so arrays built from them keep
    manifest order, the order of every cached array downstream.
    """

    def __init__(self, root: Path, manifest: pd.DataFrame, info: dict[str, Any]) -> None:
        self.root = root
        self.manifest = manifest
        self.info = info

    @property
    def has_masks(self) -> bool:
        """Whether the source had pixel ground truth (False for ``folder`` sources)."""
        return bool(self.info["has_masks"])

    @property
    def resolution(self) -> int:
        return int(self.info["resolution"])

    def rows(
        self, split: str | None = None, label: str | None = None, defect: str | None = None
    ) -> pd.DataFrame:
        """Manifest rows matching every given filter, in manifest order."""
        keep = np.ones(len(self.manifest), bool)
        for column, value in (("split", split), ("label", label), ("defect", defect)):
            if value is not None:
                keep &= (self.manifest[column] == value).to_numpy()
        return self.manifest[keep]

    def training_rows(self) -> pd.DataFrame:
        """The good training images: the only images any model is fitted on (the calibration
        share of the source's ``train/good`` is held out of them, data/split.py)."""
        return self.rows(split=TRAIN, label="good")

    def calibration_rows(self) -> pd.DataFrame:
        """The held-out good images that operating points and standardisation are taken on."""
        return self.rows(split=CALIBRATION)

    def positions(self, rows: pd.DataFrame) -> np.ndarray:
        """Manifest positions (the row numbers of every cached array) of ``rows``, a selection of
        this manifest."""
        return self.manifest.index.get_indexer(rows.index)

    def images(self, rows: pd.DataFrame | None = None) -> torch.Tensor:
        """float32 ``(N, 3, H, W)`` in [-1, 1] for ``rows`` (default: all)."""
        rows = self.manifest if rows is None else rows
        if len(rows) == 0:
            return torch.empty(0, 3, self.resolution, self.resolution)
        return to_tensor([self._read(path, "RGB") for path in rows["path"]])

    def masks(self, rows: pd.DataFrame | None = None) -> np.ndarray | None:
        """uint8 ``(N, H, W)`` with 1 = defect for ``rows`` (default: all), or None without masks.

        ``None`` when the dataset has no pixel ground truth (``has_masks`` false): pixel metrics
        must be skipped, not computed against empty masks. Rows without a mask file (good and
        unknown images) give zeros; select labelled rows for pixel metrics.
        """
        if not self.has_masks:
            return None
        rows = self.manifest if rows is None else rows
        out = np.zeros((len(rows), self.resolution, self.resolution), np.uint8)
        for i, path in enumerate(rows["mask_path"]):
            if path:
                out[i] = self._read(path, "L") > 127
        return out

    def _read(self, relative: str, mode: str) -> np.ndarray:
        path = self.root / relative
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert(mode))
        except (OSError, SyntaxError, ValueError) as exc:
            raise DataError(f"{path}: cannot read prepared image ({exc}); rerun convert_dataset") from None
        if pixels.shape[:2] != (self.resolution, self.resolution):
            raise DataError(f"{path}: is {pixels.shape[1]}x{pixels.shape[0]}, expected {self.resolution}")
        return pixels


def load_prepared(root: str | Path) -> PreparedDataset:
    """Open ``root`` (e.g. ``data/prepared``); errors name the missing or corrupt file."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: prepared dataset folder not found (run convert_dataset first)")
    manifest = read_manifest(root / MANIFEST_NAME)
    info = read_info(root / INFO_NAME)
    return PreparedDataset(root, manifest, info)
