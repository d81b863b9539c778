"""The production scores log: what ``diffad predict`` decided, one JSON row per image.

``data/monitoring/<category>/scores.jsonl`` (:class:`diffad.artifacts.layout.MonitoringDir`).
Rows are appended (one locked ``O_APPEND`` write per batch, like the verdicts) and never
rewritten; the monitor flow reads the recent window, the Review and Monitoring pages read it all.
A row says which bundle scored the image (``bundle_id``: the first 16 hex digits of the sha256 of
its ``bundle.json``), so scores of different models are never compared with one calibration set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from diffad.artifacts.layout import BundleDir
from diffad.errors import DataError
from diffad.files import append_whole

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
    """Append ``rows`` in one locked write (whole rows only, :func:`diffad.files.append_whole`)."""
    if not rows:
        return
    text = "".join(json.dumps(dataclasses.asdict(r), allow_nan=False) + "\n" for r in rows).encode()
    append_whole(path, text, DataError)


def read_scores_log(path: Path) -> pd.DataFrame:
    """The log as a frame (columns :data:`COLUMNS`, file order); empty when absent.

    A row that is not valid JSON or lacks a column is a DataError naming ``file:line``; a last
    line without its newline (a write cut by a crash) is skipped, it was never a whole row.
    """
    rows = []
    if path.is_file():
        with open(path, encoding="utf-8") as handle:
            for number, text in enumerate(handle, start=1):
                if not text.endswith("\n") or not text.strip():
                    continue
                try:
                    raw = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
                missing = [c for c in COLUMNS if c not in raw] if isinstance(raw, dict) else list(COLUMNS)
                if missing:
                    raise DataError(f"{path}:{number}: lacks {', '.join(missing)}")
                if not all(
                    isinstance(raw[c], int | float) and math.isfinite(raw[c]) for c in ("score", "threshold")
                ):
                    raise DataError(f"{path}:{number}: score and threshold must be finite numbers")
                rows.append({c: raw[c] for c in COLUMNS})
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    return frame


def log_predictions(
    path: Path, table: pd.DataFrame, *, category: str, bundle: str, threshold: float, time: str
) -> int:
    """Append ``diffad predict``'s table (columns path, method, score, norm_score, anomalous,
    percentile, heatmap) to the log at ``path``; returns the rows written."""
    from diffad.feedback.store import sha256_of

    rows = [
        ScoreRow(
            schema_version=SCHEMA_VERSION,
            time=time,
            category=category,
            bundle_id=bundle,
            method=str(r.method),
            image=str(Path(r.path).resolve()),  # absolute: the dashboard runs elsewhere
            image_sha256=sha256_of(Path(r.path)),
            score=float(r.score),
            norm_score=float(r.norm_score),
            threshold=float(threshold),
            anomalous=bool(r.anomalous),
            percentile=float(r.percentile),
            heatmap=str(Path(r.heatmap).resolve()) if isinstance(r.heatmap, str) and r.heatmap else "",
        )
        for r in table.itertuples(index=False)
    ]
    append_scores(path, rows)
    return len(rows)
