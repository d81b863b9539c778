"""The Great Expectations checks on a category's verdict file (part of ``convert_dataset``'s gate).

Run on the verdict rows beside the staged manifest; each offending row is named
``<category>.jsonl:<line> <where the reviewer saw the image>``:

* ``feedback_image_known`` -- the copied image (and mask) is in ``data/feedback/`` and the image's
  sha256 is the row's: a verdict about a file nobody can find or that changed is not data;
* ``feedback_one_verdict`` -- one effective verdict per image and reviewer: the row that supersedes
  the others (the last in the file) is also the latest in time (clocks that disagree make it
  ambiguous which decision the reviewer meant);
* ``feedback_leak`` -- no effective verdict would move a source *test* (or validation) image into
  training (a good verdict on it), nor a training/calibration image into the test set.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from diffad.data.expectations import ROW, import_gx, run_checks
from diffad.data.images import BadInputError, load_file, pixel_digest, to_rgb
from diffad.data.validation_report import ValidationReport
from diffad.feedback.dataset import FITTED, FeedbackInput, file_sha256, source_hashes
from diffad.feedback.verdicts import Verdict, effective_verdicts

UNKNOWN_IMAGE, AMBIGUOUS, LEAK = "_unknown_image", "_ambiguous", "_leak"


def validate_feedback(
    feedback: FeedbackInput, manifest: pd.DataFrame, prepared: Path
) -> ValidationReport | None:
    """The checks above, or None when the category has no verdict file (nothing to check)."""
    path = feedback.dir.verdicts(feedback.category)
    if not path.is_file():
        return None
    rows = feedback.read()
    frame = feedback_frame(feedback, rows, manifest, prepared)
    E = import_gx().expectations
    checks = [
        (
            "feedback_image_known",
            "every verdict's image (and mask) is in data/feedback/ with the sha256 the row records",
            E.ExpectColumnValuesToBeNull(column=UNKNOWN_IMAGE),
        ),
        (
            "feedback_one_verdict",
            "one effective verdict per image and reviewer (the superseding row is also the latest in time)",
            E.ExpectColumnValuesToBeNull(column=AMBIGUOUS),
        ),
        (
            "feedback_leak",
            "no verdict moves a source test/validation image into training, or a training image into test",
            E.ExpectColumnValuesToBeNull(column=LEAK),
        ),
    ]
    return run_checks(frame, checks, name=str(path), rows=len(rows))


def feedback_frame(
    feedback: FeedbackInput, rows: list[Verdict], manifest: pd.DataFrame, prepared: Path
) -> pd.DataFrame:
    """One row per verdict row with the derived columns (None = fine, else what is wrong)."""
    name = feedback.dir.verdicts(feedback.category).name
    effective = effective_verdicts(rows)
    winners = {index for index, _ in effective.values()}
    known = source_hashes(list(manifest.itertuples(index=False)), prepared) if len(manifest) else {}
    records = []
    for index, row in enumerate(rows):
        records.append(
            {
                ROW: f"{name}:{index + 1} {row.source_name}",
                UNKNOWN_IMAGE: _unknown(feedback, row),
                AMBIGUOUS: _ambiguous(index, row, effective),
                LEAK: _leak(feedback, row, known) if index in winners else None,
            }
        )
    return pd.DataFrame(records, columns=[ROW, UNKNOWN_IMAGE, AMBIGUOUS, LEAK], dtype=object)


def _unknown(feedback: FeedbackInput, row: Verdict) -> str | None:
    image = feedback.dir.root / row.image
    if not image.is_file():
        return f"{row.image} is missing"
    if file_sha256(image) != row.image_sha256:
        return f"{row.image} has another sha256 than the row records"
    if row.mask is not None and not (feedback.dir.root / row.mask).is_file():
        return f"mask {row.mask} is missing"
    return None


def _ambiguous(index: int, row: Verdict, effective: dict) -> str | None:
    winner_index, winner = effective[row.key]
    if index != winner_index and row.instant > winner.instant:
        return f"superseded by line {winner_index + 1}, which has an earlier time ({winner.time})"
    return None


def _leak(feedback: FeedbackInput, row: Verdict, known: dict[str, str]) -> str | None:
    if row.verdict == "unsure":
        return None
    image = feedback.dir.root / row.image
    hashes = [row.image_sha256]
    try:
        hashes.append(pixel_digest(to_rgb(load_file(image).image, image)))
    except (BadInputError, OSError):
        pass  # unreadable or missing: feedback_image_known says so
    same = next((known[h] for h in hashes if h in known), None)
    if same is None:
        return None
    split, _, path = same.partition(":")
    if row.verdict == "good" and split not in FITTED:
        return f"is the source {split} image {path}: a good verdict would train on it"
    if row.verdict == "defect" and split in FITTED:
        return f"is the source {split} image {path}: a defect verdict would test on it"
    return None


def with_feedback_checks(report: ValidationReport, feedback: FeedbackInput, staged: Path) -> ValidationReport:
    """``report`` (the manifest's) plus the verdict file's checks, when there is a verdict file."""
    from diffad.data.manifest import MANIFEST_NAME, read_manifest

    checked = validate_feedback(feedback, read_manifest(staged / MANIFEST_NAME, strict=False), staged)
    if checked is None:
        return report
    return ValidationReport(report.manifest, report.rows, report.checks + checked.checks)
