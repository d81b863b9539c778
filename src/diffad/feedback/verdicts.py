"""Reviewers' verdicts: one append-only, schema-checked JSON Lines file per category.

``data/feedback/<category>.jsonl`` (:class:`diffad.artifacts.layout.FeedbackDir`), one
:class:`Verdict` per line. The file is never rewritten: a reviewer who changes their mind appends
a new row, and the *effective* verdict of a (reviewer, image) pair is its last row in the file
(:func:`effective_verdicts`); the earlier rows stay as the audit trail.

Each row is checked against the schema when it is written and again when it is read, so a
hand-edited or truncated line is an error naming ``file:line``. A row is appended with one
``write`` on an ``O_APPEND`` descriptor under an exclusive ``flock``, then ``fsync``-ed: two
dashboard sessions writing at once give two whole rows, never interleaved halves.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from diffad.core import jsonl
from diffad.core.errors import DataError
from diffad.core.files import append_whole

SCHEMA_VERSION = 1
VERDICTS = ("defect", "good", "unsure")  # good = a false alarm (or a confirmed good image)
RESERVED_TYPES = ("good", "unknown")  # test/good holds good images, test/unknown unlabelled ones
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # defect types become folder names


class FeedbackError(DataError):
    """A verdict row that breaks the schema; the message names the file and line (or field)."""


@dataclass(frozen=True)
class Verdict:
    """One reviewer's decision on one image; field order = key order of the JSON row."""

    schema_version: int
    category: str
    reviewer: str
    time: str  # UTC, ISO 8601 with "Z"
    image_sha256: str  # of the image file's bytes
    image: str  # the copy under data/feedback/ (images/<sha256>.<ext>), relative to it
    source_name: str  # where the reviewer saw it (predict's input path, a test image's path)
    verdict: str  # defect | good | unsure
    defect_type: str | None  # defect only: folder-safe name, e.g. "scratch"; None = unnamed
    mask: str | None  # defect only: masks/<sha256>.png relative to data/feedback/, or None
    bundle_id: str | None  # the model bundle that produced the prediction (diffad.monitoring)
    run_id: str | None  # its accepted retrain run, when known
    method: str | None
    score: float | None  # raw score of that prediction
    norm_score: float | None  # 0-1000, threshold at 100
    threshold: float | None  # raw decision threshold of that bundle and method

    @property
    def key(self) -> tuple[str, str]:
        return (self.reviewer, self.image_sha256)

    @property
    def instant(self) -> datetime:
        """``time`` as an aware UTC datetime (compare these, never the strings)."""
        return datetime.fromisoformat(self.time.replace("Z", "+00:00")).astimezone(UTC)

    @property
    def flagged(self) -> bool | None:
        """Whether the model flagged the image when it was reviewed (None: no score recorded)."""
        if self.score is None or self.threshold is None:
            return None
        return self.score >= self.threshold

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=False, allow_nan=False)


FIELDS = tuple(f.name for f in dataclasses.fields(Verdict))
_OPTIONAL_TEXT = ("defect_type", "mask", "bundle_id", "run_id", "method")
_OPTIONAL_NUMBER = ("score", "norm_score", "threshold")


def check_verdict(raw: Any, where: str) -> Verdict:
    """The row ``raw`` (a parsed JSON object) as a :class:`Verdict`, or FeedbackError naming ``where``."""
    if not isinstance(raw, dict):
        raise FeedbackError(f"{where}: a verdict row must be a JSON object")
    missing = [k for k in FIELDS if k not in raw]
    unknown = sorted(set(raw) - set(FIELDS))
    if missing or unknown:
        what = [f"missing {', '.join(missing)}"] * bool(missing) + [f"unknown {', '.join(unknown)}"] * bool(
            unknown
        )
        raise FeedbackError(
            f"{where}: {'; '.join(what)} (schema version {SCHEMA_VERSION}: {', '.join(FIELDS)})"
        )
    if raw["schema_version"] != SCHEMA_VERSION:
        raise FeedbackError(f"{where}: schema_version {raw['schema_version']!r}, expected {SCHEMA_VERSION}")
    for key in ("category", "reviewer", "image_sha256", "image", "source_name", "verdict"):
        jsonl.text(raw, key, where, FeedbackError)
    for key in _OPTIONAL_TEXT:
        jsonl.text(raw, key, where, FeedbackError, optional=True)
    for key in _OPTIONAL_NUMBER:
        jsonl.number(raw, key, where, FeedbackError, optional=True)
    if raw["verdict"] not in VERDICTS:
        raise FeedbackError(f"{where}: verdict {raw['verdict']!r} is not one of {', '.join(VERDICTS)}")
    if not _SHA256.fullmatch(raw["image_sha256"]):
        raise FeedbackError(f"{where}: image_sha256 {raw['image_sha256']!r} is not a sha256 hex digest")
    jsonl.instant(raw, "time", where, FeedbackError)
    if not raw["time"].endswith(("Z", "+00:00")):
        raise FeedbackError(f"{where}: time {raw['time']!r} must be UTC (end in Z)")
    for key in ("image", "mask"):
        value = raw[key]
        if value is not None and (value.startswith("/") or ".." in Path(value).parts):
            raise FeedbackError(f"{where}: {key} {value!r} must be a path inside data/feedback/")
    if not re.fullmatch(rf"images/{raw['image_sha256']}\.[a-z0-9]{{1,5}}", raw["image"]):
        raise FeedbackError(
            f"{where}: image {raw['image'][:80]!r} is not images/<image_sha256>.<ext> (the reviewed copy)"
        )
    if raw["mask"] is not None and not re.fullmatch(r"masks/[0-9a-f]{64}\.png", raw["mask"]):
        raise FeedbackError(
            f"{where}: mask {raw['mask'][:80]!r} is not masks/<sha256>.png (an accepted mask)"
        )
    if raw["verdict"] != "defect" and (raw["defect_type"] is not None or raw["mask"] is not None):
        raise FeedbackError(f"{where}: only a defect verdict has a defect_type or mask")
    if raw["defect_type"] in RESERVED_TYPES:
        raise FeedbackError(
            f"{where}: defect_type {raw['defect_type']!r} names a folder with another meaning "
            f"({', '.join(RESERVED_TYPES)}); name the defect, or leave it null"
        )
    if raw["defect_type"] is not None and not _NAME.fullmatch(raw["defect_type"]):
        raise FeedbackError(
            f"{where}: defect_type {raw['defect_type']!r}: use letters, digits, '_', '-', '.' (a folder name)"
        )
    return Verdict(**{k: raw[k] for k in FIELDS})


def append_verdict(path: Path, verdict: Verdict) -> None:
    """Append one checked row to ``path`` atomically (see the module docstring)."""
    check_verdict(dataclasses.asdict(verdict), f"{path} (new row)")
    append_whole(path, (verdict.to_json() + "\n").encode(), FeedbackError)


def read_verdicts(path: Path) -> list[Verdict]:
    """Every row of ``path`` in file order (empty when there is no file); FeedbackError names the line."""
    if not path.is_file():
        return []
    rows = []
    for where, raw in jsonl.read_rows(path, FeedbackError, partial_last=False):
        row = check_verdict(raw, where)
        if row.category != path.stem:  # <category>.jsonl holds that category's verdicts only
            raise FeedbackError(f"{where}: category {row.category!r} in the verdicts of {path.stem!r}")
        rows.append(row)
    return rows


def effective_verdicts(rows: list[Verdict]) -> dict[tuple[str, str], tuple[int, Verdict]]:
    """(reviewer, image sha256) -> (row index, its last row): a later row supersedes an earlier one."""
    latest: dict[tuple[str, str], tuple[int, Verdict]] = {}
    for index, row in enumerate(rows):
        latest[row.key] = (index, row)
    return latest
