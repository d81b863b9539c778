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

GX is imported lazily (~3 s), only when a validation runs.
"""

from __future__ import annotations

import html
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from diffad.artifacts.layout import ValidationDir
from diffad.artifacts.records import validation_from_dict, write_validation
from diffad.config import ConvertDatasetConfig
from diffad.data.duplicates import near_train_duplicates
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

ROW = "_row"
SAME_AS_TRAIN = "_same_as_train"
LEAK_ORDER = ("train", "calibration", "validation", "test")  # fitted on ... measured on
SAME_PIXELS_AS_TRAIN = "_same_pixels_as_train"
NEAR_TRAIN = "_near_train"
EMPTY_MASK = "_empty_mask"
MAX_LISTED = 50  # offending rows kept per check in the JSON report


@dataclass(frozen=True)
class Check:
    """One expectation's outcome."""

    name: str
    description: str
    success: bool
    observed: Any  # GX's observed value, or the count of offending rows
    offending: tuple[dict[str, Any], ...]  # {"path", "value"} of offending rows (at most MAX_LISTED)
    offending_count: int
    error: str | None = None  # set when GX could not evaluate the expectation

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "success": self.success,
            "observed": _plain(self.observed),
            "offending_count": self.offending_count,
            "offending": [_plain(o) for o in self.offending],
            "error": self.error,
        }


@dataclass(frozen=True)
class ValidationReport:
    """The suite's result over one manifest."""

    manifest: str
    rows: int
    checks: tuple[Check, ...]

    @property
    def success(self) -> bool:
        return all(check.success for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.success]

    def summary(self, listed: int = 10) -> str:
        """Readable text: failures first, each naming up to ``listed`` offending rows by path."""
        status = "passed" if self.success else f"FAILED ({len(self.failed)} of {len(self.checks)} checks)"
        lines = [f"data validation {status}: {self.manifest}, {self.rows} rows"]
        for check in self.failed:
            lines.append(f"  FAIL {check.name}: {check.description}")
            if check.error:
                lines.append(f"       could not evaluate: {check.error}")
            elif check.offending_count:
                lines.append(f"       {check.offending_count} offending row(s):")
                lines += [f"         {o['path']}  ({o['value']})" for o in check.offending[:listed]]
                if check.offending_count > listed:
                    lines.append(f"         ... and {check.offending_count - listed} more")
            else:
                lines.append(f"       observed: {_plain(check.observed)}")
        passed = [check.name for check in self.checks if check.success]
        if passed:
            lines.append(f"  ok   {', '.join(passed)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: overall result, then every check (failures first)."""
        ordered = self.failed + [check for check in self.checks if check.success]
        return {
            "success": self.success,
            "checks_failed": len(self.failed),
            "checks_total": len(self.checks),
            "rows": self.rows,
            "manifest": self.manifest,
            "checks": [check.to_dict() for check in ordered],
        }

    def write(self, report_dir: Path) -> None:
        """The report through the artifact contract: ``validation.json``, a flat ``summary.json``
        for ``dvc metrics`` and a small self-contained ``validation.html`` under ``report_dir``."""
        data = self.to_dict()
        write_validation(ValidationDir(Path(report_dir)), validation_from_dict(data), _html(data))


def validate_prepared(
    out_dir: Path, convert: ConvertDatasetConfig, resolution: int, shown_as: Path | None = None
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


def import_gx():
    """Great Expectations, imported quietly (no analytics, no INFO logs); ~3 s the first time."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # before import: it logs a lot
    import great_expectations as gx

    _quiet_gx_loggers()
    return gx


def run_checks(frame: pd.DataFrame, checks: list, *, name: str, rows: int) -> ValidationReport:
    """Run ``(check name, description, expectation)`` triples on ``frame`` (its :data:`ROW` column
    names offending rows) in an ephemeral GX context."""
    gx = import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = context.data_sources.add_pandas("prepared").add_dataframe_asset("manifest")
    suite = context.suites.add(gx.ExpectationSuite(name="manifest"))
    descriptions = {}
    for check_name, description, expectation in checks:
        expectation.meta = {"check": check_name}
        suite.add_expectation(expectation)
        descriptions[check_name] = description
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(
            name="manifest", data=batch.add_batch_definition_whole_dataframe("all"), suite=suite
        )
    )
    result = definition.run(
        batch_parameters={"dataframe": frame},
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW]},
    )
    outcomes = {r.expectation_config.meta["check"]: r for r in result.results}
    return ValidationReport(
        manifest=name,
        rows=rows,
        checks=tuple(_check(n, descriptions[n], outcomes[n]) for n, _, _ in checks),
    )


def _quiet_gx_loggers() -> None:
    """Some GX modules pin their own logger to INFO; the stage's INFO log wants none of it."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.WARNING)


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


def _check(name: str, description: str, result: Any) -> Check:
    details = result.result or {}
    index_list = details.get("unexpected_index_list") or []
    column = result.expectation_config.kwargs.get("column")
    offending = tuple(
        {"path": entry.get(ROW), "value": entry.get(column) if column else None}
        for entry in index_list[:MAX_LISTED]
    )
    observed = details.get("observed_value", details.get("unexpected_count"))
    mismatched = (details.get("details") or {}).get("mismatched")
    if isinstance(mismatched, dict) and "missing" in mismatched:  # a column-set check: name what's absent
        observed = {"missing": mismatched["missing"]}
    elif name == "columns" and isinstance(observed, list):  # the manifest's, not the checks' helpers
        observed = [c for c in observed if not str(c).startswith("_")]
    return Check(
        name=name,
        description=description,
        success=bool(result.success),
        observed=observed,
        offending=offending,
        offending_count=int(details.get("unexpected_count") or len(index_list)),
        error=_exception_message(result.exception_info),
    )


def _exception_message(info: Any) -> str | None:
    """GX reports exceptions flat or keyed by metric; return the first message, if any."""
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info.get("raised_exception") else None
    for value in info.values():
        message = _exception_message(value)
        if message:
            return message
    return None


def _plain(value: Any) -> Any:
    """JSON-safe copy: numpy scalars -> Python, NaN -> None, containers recursively."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _html(data: dict[str, Any]) -> str:
    """A dependency-free HTML table of the checks (GX data docs need a file-backed context)."""
    rows = []
    for check in data["checks"]:
        listed = "<br>".join(html.escape(f"{o['path']} ({o['value']})") for o in check["offending"][:20])
        status = "ok" if check["success"] else "FAIL"
        rows.append(
            f"<tr class='{status}'><td>{status}</td><td>{html.escape(check['name'])}</td>"
            f"<td>{html.escape(check['description'])}</td><td>{html.escape(str(check['observed']))}</td>"
            f"<td>{check['offending_count']}</td><td>{listed or html.escape(check['error'] or '')}</td></tr>"
        )
    title = f"Data validation: {'passed' if data['success'] else 'FAILED'}"
    return (
        f"<!doctype html><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px;vertical-align:top}"
        "table{border-collapse:collapse}.FAIL td:first-child{color:#b00;font-weight:bold}</style>"
        f"<h1>{title}</h1><p>{html.escape(data['manifest'])}: {data['rows']} rows, "
        f"{data['checks_failed']} of {data['checks_total']} checks failed</p>"
        "<table><tr><th></th><th>check</th><th>expectation</th><th>observed</th><th>offending</th>"
        "<th>rows</th></tr>" + "".join(rows) + "</table>\n"
    )
