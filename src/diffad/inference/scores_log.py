"""The production scores log: what ``diffad predict`` decided, one JSON row per image.

``data/monitoring/<category>/scores.jsonl`` (:class:`diffad.artifacts.layout.MonitoringDir`).
Serving writes it, so it lives here, under everything that reads it: rows are appended (one locked
``O_APPEND`` write per batch, like the verdicts) and never rewritten; the monitor
(:mod:`diffad.monitoring`) reads the recent window, the Review and Monitoring pages read it all.
A row says which bundle scored the image (``bundle_id``: the first 16 hex digits of the sha256 of
its ``bundle.json``), so scores of different models are never compared with one calibration set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from diffad.artifacts.layout import BundleDir
from diffad.core import jsonl
from diffad.core.errors import DataError
from diffad.core.files import append_whole, normal_mode, safe_name, sha256_of
from diffad.metrics.normalize import NORM_MAX

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ScoreRow:
    """One scored image; field order = key order of the JSON row."""

    schema_version: int
    time: str  # UTC ISO 8601, "Z"
    category: str
    bundle_id: str
    method: str
    image: str  # the input file, absolute
    image_sha256: str  # of the file's bytes
    score: float  # raw, larger = more anomalous
    norm_score: float  # 0-1000, threshold at 100
    threshold: float  # raw decision threshold of the bundle and method
    anomalous: bool
    percentile: float  # share (0-100) of calibration images scoring lower
    heatmap: str  # predict's overlay PNG, "" without one


COLUMNS = tuple(f.name for f in dataclasses.fields(ScoreRow))


def bundle_id(bundle_dir: Path) -> str:
    """Short content id of a model bundle: its manifest's sha256 (the manifest names every weight)."""
    return hashlib.sha256(BundleDir(Path(bundle_dir)).manifest.read_bytes()).hexdigest()[:16]


def append_scores(path: Path, rows: Sequence[ScoreRow]) -> None:
    """Append ``rows`` in one locked write (whole rows only, :func:`diffad.core.files.append_whole`)."""
    if not rows:
        return
    text = "".join(json.dumps(dataclasses.asdict(r), allow_nan=False) + "\n" for r in rows).encode()
    append_whole(path, text, DataError)


def check_appendable(path: Path) -> None:
    """Refuse now, naming ``path``, what :func:`append_scores` would refuse after a whole run:
    a log that cannot be created or opened for appending, or whose last row lost its newline."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, normal_mode())
    except OSError as exc:
        raise DataError(
            f"{path}: the scores log cannot be written ({exc.strerror}); fix that, or pass "
            "--scores-log <folder> / --no-scores-log"
        ) from None
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            raise DataError(f"{path}: does not end with a newline (a truncated row); fix it first")
    finally:
        os.close(fd)


def read_scores_log(path: Path, now: datetime | None = None) -> pd.DataFrame:
    """The log as a frame (columns :data:`COLUMNS`, file order, ``time`` as UTC instants); empty
    when absent. Every field of every row is checked (:mod:`diffad.core.jsonl`): whatever is wrong is a
    DataError naming ``file:line`` and the field. A last line without its newline (a write cut by
    a crash) is skipped, it was never a whole row."""
    rows = []
    if path.is_file():
        for where, raw in jsonl.read_rows(path, DataError, partial_last=True):
            rows.append(check_score_row(raw, where, now))
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame


def check_score_row(raw: dict, where: str, now: datetime | None = None) -> dict:
    """One row, every field checked (see :func:`read_scores_log`); ``time`` parsed."""
    missing = [c for c in COLUMNS if c not in raw]
    if missing:
        raise DataError(f"{where}: lacks {', '.join(missing)}")
    if raw["schema_version"] != SCHEMA_VERSION or isinstance(raw["schema_version"], bool):
        raise DataError(f"{where}: schema_version {raw['schema_version']!r}, expected {SCHEMA_VERSION}")
    row = {
        "schema_version": SCHEMA_VERSION,
        "time": jsonl.instant(raw, "time", where, DataError, now),
        "category": jsonl.text(raw, "category", where, DataError),
        "bundle_id": jsonl.text(raw, "bundle_id", where, DataError, pattern="[0-9a-f]{16}"),
        "method": jsonl.text(raw, "method", where, DataError),
        "image": jsonl.text(raw, "image", where, DataError),
        "image_sha256": jsonl.text(raw, "image_sha256", where, DataError, pattern="[0-9a-f]{64}"),
        "score": jsonl.number(raw, "score", where, DataError),
        "norm_score": jsonl.number(raw, "norm_score", where, DataError, low=0, high=NORM_MAX),
        "threshold": jsonl.number(raw, "threshold", where, DataError),
        "anomalous": jsonl.boolean(raw, "anomalous", where, DataError),
        "percentile": jsonl.number(raw, "percentile", where, DataError, low=0, high=100),
        "heatmap": raw["heatmap"],
    }
    if raw["heatmap"] != "":
        row["heatmap"] = jsonl.text(raw, "heatmap", where, DataError)
    return row


def log_predictions(
    path: Path, table: pd.DataFrame, *, category: str, bundle: str, threshold: float, time: str
) -> int:
    """Append ``diffad predict``'s table (columns path, method, score, norm_score, anomalous,
    percentile, heatmap) to the log at ``path``; returns the rows written."""
    sources = table.attrs.get("sources") or [Path(p) for p in table["path"]]
    rows = [
        ScoreRow(
            schema_version=SCHEMA_VERSION,
            time=time,
            category=category,
            bundle_id=bundle,
            method=str(r.method),
            image=safe_name(Path(source).resolve()),  # absolute: the dashboard runs elsewhere
            image_sha256=sha256_of(Path(source)),
            score=float(r.score),
            norm_score=float(r.norm_score),
            threshold=float(threshold),
            anomalous=bool(r.anomalous),
            percentile=float(r.percentile),
            heatmap=str(Path(r.heatmap).resolve()) if isinstance(r.heatmap, str) and r.heatmap else "",
        )
        for r, source in zip(table.itertuples(index=False), sources, strict=True)
    ]
    append_scores(path, rows)
    return len(rows)
