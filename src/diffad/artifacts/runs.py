"""Run records, the accepted run and the bundle manifest: shapes, readers and writers.

A *run record* (``runs/history/<run_id>.json``) is written for every retrain, whatever happened:

=================  =============================================================================
outcome            meaning
=================  =============================================================================
``accepted``       promoted: ``runs/<category>/accepted/`` now holds it
``not_promoted``   finished, but its metrics fell below the baseline by more than the tolerance
``rejected``       stopped at the data validation gate; nothing trained
``failed``         a stage or the flow itself failed
=================  =============================================================================

``baseline`` says what the run was compared with (the accepted run, the reports the project
serves, or nothing) and ``rule`` the acceptance rule as applied.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from diffad.artifacts.layout import MANIFEST, BundleDir, RunsDir
from diffad.artifacts.records import (
    BUNDLE_FORMAT,
    SCHEMA_VERSION,
    Metrics,
    read_json,
    read_json_if_exists,
    read_metrics,
    write_json,
)
from diffad.core.errors import ArtifactError, DiffadError
from diffad.core.files import sha256_of

OUTCOME_TEXT = {
    "accepted": "accepted",
    "not_promoted": "not promoted (worse than its baseline)",
    "rejected": "rejected at the data validation gate",
    "failed": "failed",
}
OUTCOMES = tuple(OUTCOME_TEXT)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Baseline:
    """What a retrain was judged against."""

    source: str  # "accepted" | "served" | "none"
    description: str  # e.g. "accepted run 2026...-fabric-1a2b" / "served reports/metrics.json"
    run_id: str | None = None
    metrics: Metrics | None = None


@dataclass(frozen=True)
class RunRecord:
    """``runs/history/<run_id>.json``."""

    run_id: str
    category: str
    outcome: str  # one of OUTCOMES
    state: str  # Prefect's final state name: Completed / Failed
    finished: str = field(default_factory=now_iso)
    reason: str | None = None
    metrics: Metrics | None = None
    baseline: Baseline | None = None
    rule: str | None = None
    deltas: dict[str, dict[str, float | None]] = field(default_factory=dict)
    regressions: list[str] = field(default_factory=list)
    validation: dict[str, Any] | None = None  # ValidationResult.digest()
    validation_report: str | None = None  # the kept report, relative to the project
    data_hash: str | None = None
    flow_run_id: str | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome {self.outcome!r} is not one of {OUTCOMES}")

    @property
    def accepted(self) -> bool:
        return self.outcome == "accepted"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "accepted": self.accepted}


def record_from_dict(doc: Any, source: str = "run record") -> RunRecord:
    if not isinstance(doc, dict):
        raise ArtifactError(f"{source}: expected a JSON object")
    known = {f.name for f in fields(RunRecord)}
    values = {k: v for k, v in doc.items() if k in known}
    if isinstance(values.get("baseline"), dict):
        base_known = {f.name for f in fields(Baseline)}
        values["baseline"] = Baseline(**{k: v for k, v in values["baseline"].items() if k in base_known})
    try:
        return RunRecord(**values)
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"{source}: malformed run record ({exc})") from None


def write_run_record(runs: RunsDir, record: RunRecord) -> Path:
    """The record and the category's ``last_run.json``; returns the record's path."""
    last = {k: getattr(record, k) for k in ("run_id", "finished", "state", "outcome", "data_hash")}
    write_json(runs.last_run(record.category), {**last, "accepted": record.accepted})
    return write_json(runs.record(record.run_id), record.to_dict())


def read_run_records(runs: RunsDir) -> tuple[list[RunRecord], list[Path]]:
    """(records oldest first, files that could not be read)."""
    records, bad = [], []
    for path in sorted(p for p in runs.history.glob("*.json") if p.is_file()):
        try:
            records.append(record_from_dict(read_json(path), str(path)))
        except ArtifactError:
            bad.append(path)
    return sorted(records, key=lambda r: r.finished), bad


def read_last_run(runs: RunsDir, category: str) -> dict[str, Any]:
    """``last_run.json`` of a category ({} before the first retrain)."""
    last = read_json_if_exists(runs.last_run(category))
    return last if isinstance(last, dict) else {}


@dataclass(frozen=True)
class AcceptedRun:
    """``runs/<category>/accepted/run.json`` plus its metrics."""

    run_id: str
    category: str
    accepted_at: str | None
    data_hash: str | None
    metrics: Metrics
    info: dict[str, Any]


def write_accepted_info(path: Path, info: dict[str, Any]) -> Path:
    return write_json(path, {"schema_version": SCHEMA_VERSION, "accepted_at": now_iso(), **info})


def read_accepted(runs: RunsDir, category: str) -> AcceptedRun | None:
    """The category's accepted run, or None before the first one."""
    folder = runs.accepted(category)
    info = read_json_if_exists(folder.run)
    if not isinstance(info, dict) or not folder.metrics.exists():
        return None
    return AcceptedRun(
        run_id=str(info.get("run_id") or folder.root.name),
        category=category,
        accepted_at=info.get("accepted_at"),
        data_hash=info.get("data_hash"),
        metrics=read_metrics(folder.metrics),
        info=info,
    )


# ------------------------------------------------------------------ bundle manifest


def write_bundle_manifest(bundle: BundleDir, meta: dict[str, Any]) -> Path:
    """``bundle.json`` of a bundle folder being written: ``format`` first, then whatever the
    bundle's writer puts in ``meta`` (category, resolution, transform, methods, params,
    thresholds, standardizers, ...), then ``files``: the sha256 of every other file in the folder,
    so the manifest's own hash (the bundle id) covers every byte of the bundle."""
    folder = bundle.root
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for path in sorted(folder.iterdir()):
        if path.name == MANIFEST:
            continue
        if not path.is_file() or path.is_symlink():
            raise ArtifactError(f"{path}: a bundle holds plain files only")
        files[path.name] = sha256_of(path)
    return write_json(folder / MANIFEST, {"format": BUNDLE_FORMAT, **meta, "files": files})


def read_bundle_manifest(bundle: BundleDir) -> dict[str, Any]:
    """The manifest of the version served; :class:`ArtifactError` when absent, not JSON or of
    another format."""
    try:
        path = bundle.current().manifest
    except DiffadError as exc:  # a damaged version pointer
        raise ArtifactError(str(exc)) from None
    if not path.exists():
        raise ArtifactError(f"{path}: not found; is {bundle.root} a model bundle (models/bundle)?")
    meta = read_json(path)
    if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ArtifactError(
            f"{path}: bundle format {found!r}, expected {BUNDLE_FORMAT}; rebuild it with `dvc repro`"
        )
    return meta
