"""The Great Expectations suite over ``manifest.csv``: bad data fails the stage, not the training.

GX Core 1.x runs in an ephemeral context (nothing written, no analytics, no network) on the
manifest plus two derived columns:

* ``_row`` -- the row's ``path`` (or ``row <i>``), used to name offending rows;
* ``_same_as_train`` -- for a calibration, validation or test row, the first row of an earlier split
  (train, then calibration) with the same source ``sha256`` (leakage: fitted or calibrated on it);
* ``_same_pixels_as_train`` -- ... with the same decoded pixels (``pixel_sha256``): a re-saved copy;
* ``_near_train`` -- ... within the near-duplicate distance (:mod:`diffad.data.duplicates`):
  a re-encoded copy; computed from the prepared images by :func:`validate_prepared`;
* ``_empty_mask`` -- the mask path of a defect row whose (source) mask marks no pixel.

GX is imported lazily (~3 s), only when a validation runs (:mod:`diffad.data.expectations`); the
result is a :class:`~diffad.data.validation_report.ValidationReport`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from diffad.data.duplicates import near_train_duplicates
from diffad.data.expectations import ROW, import_gx, run_checks
from diffad.data.manifest import (
    INFO_NAME,
    LABELS,
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    ORIGINS,
    SPLITS,
    read_info,
    read_manifest,
)
from diffad.data.settings import ConvertDatasetSettings
from diffad.data.validation_report import ValidationReport

SAME_AS_TRAIN = "_same_as_train"
LEAK_ORDER = ("train", "calibration", "validation", "test")  # fitted on ... measured on
SAME_PIXELS_AS_TRAIN = "_same_pixels_as_train"
NEAR_TRAIN = "_near_train"
EMPTY_MASK = "_empty_mask"


def validate_prepared(
    out_dir: Path, convert: ConvertDatasetSettings, resolution: int, shown_as: Path | None = None
) -> ValidationReport:
    """Run the suite on ``out_dir/manifest.csv`` (``has_masks`` from ``info.json``).

    ``shown_as``: the folder named in the report (the final one, when ``out_dir`` is staging).
    """
    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir / MANIFEST_NAME, strict=False)
    info = read_info(out_dir / INFO_NAME)
    return validate_manifest(
        manifest,
        resolution=resolution,
        has_masks=bool(info["has_masks"]),
        min_train_images=convert.min_train_images,
        min_test_images=convert.min_test_images,
        near_duplicates=near_train_duplicates(out_dir, manifest, convert.near_duplicate_rms),
        min_calibration_images=convert.min_calibration_images,
        name=str(Path(shown_as or out_dir) / MANIFEST_NAME),
    )


def validate_manifest(
    manifest: pd.DataFrame,
    *,
    resolution: int,
    has_masks: bool,
    min_train_images: int,
    min_test_images: int,
    near_duplicates: dict[str, str] | None = None,
    min_calibration_images: int = 0,
    name: str = MANIFEST_NAME,
) -> ValidationReport:
    """Run the suite on a manifest DataFrame (as read by ``read_manifest(strict=False)``).

    ``near_duplicates``: test path -> train path of perceptual near-duplicates (see
    :func:`validate_prepared`); without it that check passes trivially.
    """
    gx = import_gx()
    from great_expectations.expectations.row_conditions import Column

    E = gx.expectations
    frame = _with_derived_columns(manifest, near_duplicates or {})
    is_train = Column("split") == "train"
    labelled_test = (Column("split") == "test") & (Column("label") != "unknown")
    good_test = (Column("split") == "test") & (Column("label") == "good")
    checks = [
        (
            "columns",
            "all manifest columns are present",
            E.ExpectTableColumnsToMatchSet(column_set=list(MANIFEST_COLUMNS), exact_match=False),
        ),
        (
            "train_test_leak",
            "no test, calibration or validation image is a copy of a train image (same sha256: leakage)",
            E.ExpectColumnValuesToBeNull(column=SAME_AS_TRAIN),
        ),
        (
            "pixel_leak",
            "no test image has the same decoded pixels as a train image (a re-saved copy)",
            E.ExpectColumnValuesToBeNull(column=SAME_PIXELS_AS_TRAIN),
        ),
        (
            "near_duplicate",
            "no test image is a perceptual near-duplicate of a train image (a re-encoded copy)",
            E.ExpectColumnValuesToBeNull(column=NEAR_TRAIN),
        ),
        (
            "repeated_sha256",
            "no source file is used twice (repeated sha256)",
            E.ExpectColumnValuesToBeUnique(column="sha256"),
        ),
        ("unique_path", "every prepared path is unique", E.ExpectColumnValuesToBeUnique(column="path")),
        (
            "split_values",
            f"split is one of {', '.join(SPLITS)}",
            E.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
        ),
        (
            "label_values",
            f"label is one of {', '.join(LABELS)}",
            E.ExpectColumnValuesToBeInSet(column="label", value_set=list(LABELS)),
        ),
        (
            "origin_values",
            f"origin is one of {', '.join(ORIGINS)}",
            E.ExpectColumnValuesToBeInSet(column="origin", value_set=list(ORIGINS)),
        ),
        (
            "defect_present",
            "every row names its defect folder",
            E.ExpectColumnValuesToNotBeNull(column="defect"),
        ),
        (
            "width",
            f"width is {resolution}",
            E.ExpectColumnValuesToBeInSet(column="width", value_set=[resolution]),
        ),
        (
            "height",
            f"height is {resolution}",
            E.ExpectColumnValuesToBeInSet(column="height", value_set=[resolution]),
        ),
        (
            "channels",
            "images are RGB (3 channels)",
            E.ExpectColumnValuesToBeInSet(column="channels", value_set=[3]),
        ),
        (
            "not_constant",
            "no image is constant (std > 0)",
            E.ExpectColumnValuesToBeBetween(column="std", min_value=0, strict_min=True),
        ),
        (
            "mean_range",
            "mean intensity lies in [0, 1]",
            E.ExpectColumnValuesToBeBetween(column="mean", min_value=0, max_value=1),
        ),
        (
            "train_images",
            f"at least {min_train_images} train images",
            E.ExpectTableRowCountToBeBetween(min_value=min_train_images, row_condition=is_train),
        ),
        (
            "calibration_images",
            f"at least {min_calibration_images} calibration images (held out from train/good for the "
            "thresholds; too few: add good training images, or lower convert_dataset.min_calibration_images"
            " or convert_dataset.min_train_images)",
            E.ExpectTableRowCountToBeBetween(
                min_value=min_calibration_images, row_condition=Column("split") == "calibration"
            ),
        ),
        (
            "test_images",
            f"at least {min_test_images} labelled test images",
            E.ExpectTableRowCountToBeBetween(min_value=min_test_images, row_condition=labelled_test),
        ),
        (
            "good_test_images",
            "at least 1 good test image (image AUROC and thresholds need good test images)",
            E.ExpectTableRowCountToBeBetween(min_value=1, row_condition=good_test),
        ),
    ]
    if has_masks:
        checks.append(
            (
                "mask_for_defects",
                "every labelled defect test image has a mask (the source has masks)",
                E.ExpectColumnValuesToNotBeNull(
                    column="mask_path",
                    row_condition=(Column("label") == "anomaly") & (Column("split") == "test"),
                ),
            )
        )
        checks.append(
            (
                "mask_not_empty",
                "every defect mask marks at least one defect pixel",
                E.ExpectColumnValuesToBeNull(column=EMPTY_MASK),
            )
        )

    return run_checks(frame, checks, name=name, rows=len(manifest))


def _with_derived_columns(manifest: pd.DataFrame, near_duplicates: dict[str, str]) -> pd.DataFrame:
    """Empty text cells -> null (so "not null" means "given"), plus the derived columns above."""
    frame = manifest.copy()
    for column in frame.columns:
        if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
            frame[column] = frame[column].astype(object).where(frame[column] != "", None)
    rows = frame["path"] if "path" in frame else pd.Series(dtype=object)
    frame[ROW] = [p if isinstance(p, str) else f"row {i}" for i, p in enumerate(rows.reindex(frame.index))]
    frame[SAME_AS_TRAIN] = _train_match(frame, "sha256")
    frame[SAME_PIXELS_AS_TRAIN] = _train_match(frame, "pixel_sha256")
    exact = frame[SAME_AS_TRAIN].notna() | frame[SAME_PIXELS_AS_TRAIN].notna()  # reported there already
    near = [None if known else near_duplicates.get(row) for row, known in zip(frame[ROW], exact, strict=True)]
    frame[NEAR_TRAIN] = pd.Series(near, index=frame.index, dtype=object)
    empty = [None] * len(frame)
    if {"mask_path", "mask_pixels"} <= set(frame.columns):
        empty = [
            path if isinstance(path, str) and pixels == 0 else None
            for path, pixels in zip(frame["mask_path"], frame["mask_pixels"], strict=True)
        ]
    frame[EMPTY_MASK] = pd.Series(empty, index=frame.index, dtype=object)
    return frame


def _train_match(frame: pd.DataFrame, column: str) -> pd.Series:
    """For each row, the first row of an earlier split (train < calibration < validation < test)
    with the same ``column`` value, None otherwise: a test image that is a calibration image leaks
    as surely as one that is a training image."""
    same = [None] * len(frame)
    if {"split", column} <= set(frame.columns):
        first_seen: dict[str, dict[object, str]] = {}  # split -> value -> first row of that split
        for split in LEAK_ORDER:
            rows = frame[frame["split"] == split]
            first_seen[split] = dict(zip(rows[column][::-1], rows[ROW][::-1], strict=True))
        earlier = {split: LEAK_ORDER[:i] for i, split in enumerate(LEAK_ORDER)}
        same = [
            next((first_seen[e][h] for e in earlier.get(s, ()) if h in first_seen[e]), None)
            for s, h in zip(frame["split"], frame[column], strict=True)
        ]
    return pd.Series(same, index=frame.index, dtype=object)
