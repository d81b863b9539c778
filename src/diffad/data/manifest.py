"""``manifest.csv`` and ``info.json`` of a prepared dataset (layout: docs/architecture.md).

One manifest row per image, sorted by (split, defect, stem): that order is the image order of
every cached array downstream.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from diffad.artifacts.layout import INFO_FILE, MANIFEST_FILE
from diffad.core.errors import DataError
from diffad.core.files import atomic_write

MANIFEST_NAME = MANIFEST_FILE
INFO_NAME = INFO_FILE
TRAIN, CALIBRATION = "train", "calibration"  # the split models are fitted on; the held-out share
SPLITS = (TRAIN, CALIBRATION, "test", "validation")  # calibration: data/split.py
LABELS = ("good", "anomaly", "unknown")
ORIGINS = ("source", "feedback")
INFO_KEYS = ("category", "source", "resolution", "transform", "has_masks", "counts", "skipped")


@dataclass(frozen=True)
class ManifestRow:
    """One prepared image; field order = column order of ``manifest.csv``."""

    path: str  # images/<split>/<defect>/<stem>.png, relative to the prepared root
    split: str  # train | calibration | test | validation
    label: str  # good | anomaly | unknown
    defect: str  # good, the defect folder name, or unknown
    mask_path: str  # masks/test/<defect>/<stem>.png, or "" (no mask)
    width: int  # prepared size, pixels
    height: int
    channels: int  # always 3 (prepared images are RGB)
    mean: float  # of the prepared image, in [0, 1]
    std: float
    sha256: str  # of the source file's bytes
    source_path: str  # relative to the source root
    source_mode: str  # PIL mode of the source
    mask_pixels: int  # defect pixels of the source mask (0 without a mask)
    pixel_sha256: str  # of the decoded source pixels (RGB) and size: a re-saved copy has the same
    origin: str = "source"  # source | feedback (a reviewer's verdict on a production image)

    @property
    def sort_key(self) -> tuple[str, str, str]:
        return (self.split, self.defect, Path(self.path).stem)


MANIFEST_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ManifestRow))
_TEXT_COLUMNS = {f.name: str for f in dataclasses.fields(ManifestRow) if f.type == "str"}


def write_manifest(rows: list[ManifestRow], path: Path) -> pd.DataFrame:
    """Write ``rows`` sorted by (split, defect, stem); return the written frame."""
    ordered = sorted(rows, key=lambda row: row.sort_key)
    frame = pd.DataFrame([dataclasses.astuple(row) for row in ordered], columns=list(MANIFEST_COLUMNS))
    # %.6g keeps a tiny but non-zero std non-zero, unlike a fixed number of decimals.
    frame.to_csv(path, index=False, float_format="%.6g")
    return frame


def read_manifest(path: Path, strict: bool = True) -> pd.DataFrame:
    """Read ``manifest.csv``; text columns stay text and an empty ``mask_path`` is ``""``.

    ``strict`` also requires every manifest column (the validation suite reads non-strict so it
    can report missing columns itself).
    """
    if not path.is_file():
        raise DataError(f"{path}: manifest not found (run convert_dataset first)")
    try:
        frame = pd.read_csv(path, dtype=_TEXT_COLUMNS, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: not a readable manifest CSV ({exc})") from None
    missing = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
    if strict and missing:
        raise DataError(f"{path}: manifest lacks column(s) {', '.join(missing)}")
    return frame


def write_info(info: dict[str, Any], path: Path) -> None:
    text = json.dumps(info, indent=2, sort_keys=False) + "\n"
    atomic_write(Path(path), lambda tmp: tmp.write_text(text))


def read_info(path: Path) -> dict[str, Any]:
    """Read ``info.json``, requiring the contract's keys."""
    if not path.is_file():
        raise DataError(f"{path}: dataset info not found (run convert_dataset first)")
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(info, dict):
        raise DataError(f"{path}: expected a JSON object")
    missing = [k for k in INFO_KEYS if k not in info]
    if missing:
        raise DataError(f"{path}: lacks key(s) {', '.join(missing)}")
    return info
