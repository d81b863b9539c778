"""Accept or reject a finished retrain by its metrics, promote what was accepted, record every run.

Acceptance rule (all metrics "higher is better", ``tolerance`` absolute):

    regression(m, k)  <=>  prev[m][k] is a number
                           and (new[m][k] is missing/NaN  or  new[m][k] < prev[m][k] - tol)
    accepted          <=>  no regression for any method m of the last accepted run and any k in ``keys``

The first run of a category has nothing to compare with and is accepted when it produced metrics.

Records, all inside the project (the dashboard reads them)::

    runs/<category>/accepted/      the accepted run: metrics.json, dvc.lock, params.yaml, run.json
                                   and the published outputs (reports/, models/) in project layout;
                                   replaced as a whole, only on acceptance
    runs/<category>/last_run.json  the latest attempt (accepted or not): run id, data hash, state
    runs/history/<run_id>.json     one per run: run_id, category, finished, state, metrics,
                                   accepted, deltas (+ reason, data_hash, flow_run_id)

``dvc.lock`` + ``params.yaml`` in ``accepted/`` are the source of truth for an accepted run: copied
into a checkout, ``dvc checkout`` (or ``dvc pull`` from the remote) restores every output.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from diffad.errors import ArtifactError, ConfigError
from flows.workspace import RECORDS_DIR, copy_path, lock_outputs, remove_path, replace_path, swap_in

DEFAULT_KEYS = ("image_auroc", "pixel_auroc", "aupro")  # compared for acceptance, higher is better

Metrics = dict[str, dict[str, float | None]]  # {"<method>": {"image_auroc": 0.97, ...}}


@dataclass(frozen=True)
class Decision:
    """Outcome of comparing a run's metrics with the last accepted ones."""

    accepted: bool
    deltas: dict[str, dict[str, float | None]] = field(default_factory=dict)  # new - previous
    regressions: list[str] = field(default_factory=list)  # "method.key: new < previous - tol"


def _number(value: Any) -> float | None:
    """``value`` as a finite float, else None (missing, null, NaN, text)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def compare_metrics(
    new: Mapping[str, Mapping[str, Any]],
    previous: Mapping[str, Mapping[str, Any]] | None,
    tolerance: float,
    keys: Sequence[str] = DEFAULT_KEYS,
) -> Decision:
    """Apply the acceptance rule of the module docstring; deltas cover every shared numeric key."""
    if tolerance < 0:
        raise ConfigError(f"tolerance: {tolerance!r} must be >= 0")
    if not new:
        return Decision(accepted=False, regressions=["no metrics were produced"])
    if not previous:
        return Decision(accepted=True)
    deltas: dict[str, dict[str, float | None]] = {}
    regressions: list[str] = []
    for method, before in previous.items():
        after = new.get(method) or {}
        shared = [key for key in before if _number(before[key]) is not None and key in after]
        deltas[method] = {
            key: (None if _number(after[key]) is None else _number(after[key]) - _number(before[key]))
            for key in shared
        }
        for key in keys:
            prev = _number(before.get(key))
            if prev is None:
                continue
            cur = _number(after.get(key))
            if cur is None:
                regressions.append(f"{method}.{key}: missing (accepted run had {prev:.4f})")
            elif cur < prev - tolerance:
                regressions.append(f"{method}.{key}: {cur:.4f} < {prev:.4f} - {tolerance:g}")
    return Decision(accepted=not regressions, deltas=deltas, regressions=regressions)


def check_category(name: str) -> str:
    """``name`` if it is usable as one folder name, else :class:`ConfigError`."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"category: {name!r} is not a usable folder name")
    return name


def category_dir(project: Path, category: str) -> Path:
    return project / RECORDS_DIR / check_category(category)


def accepted_dir(project: Path, category: str) -> Path:
    return category_dir(project, category) / "accepted"


def read_json(path: Path) -> Any:
    """Parsed JSON, or None when the file does not exist."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc})") from None


def write_json(path: Path, payload: Any) -> Path:
    """Write ``payload`` as indented JSON, atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


def read_metrics(path: Path) -> Metrics:
    """``reports/metrics.json`` of a run: {method: {key: value}}; :class:`ArtifactError` if absent."""
    metrics = read_json(path)
    if not isinstance(metrics, dict) or not all(isinstance(v, dict) for v in metrics.values()):
        raise ArtifactError(f"{path}: expected {{method: {{metric: value}}}}, got {metrics!r:.200}")
    return metrics


def accepted_metrics(project: Path, category: str) -> Metrics | None:
    """Metrics of the category's last accepted run, or None before the first one."""
    path = accepted_dir(project, category) / "metrics.json"
    return read_metrics(path) if path.exists() else None


def accepted_run(project: Path, category: str) -> dict[str, Any] | None:
    """``run.json`` of the category's last accepted run (run id, data hash, ...), or None."""
    return read_json(accepted_dir(project, category) / "run.json")


def new_run_id(category: str, flow_run_id: str | None, now: datetime | None = None) -> str:
    """Sortable, unique run id: ``20261123T020000Z-fabric-1a2b3c4d``."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    suffix = (flow_run_id or os.urandom(4).hex()).replace("-", "")[:8]
    return f"{stamp}-{check_category(category)}-{suffix}"


def publish_accepted(
    project: Path,
    category: str,
    workspace: Path,
    metrics_file: str,
    publish: Iterable[str],
    run: dict[str, Any],
) -> tuple[Path, list[str]]:
    """Replace ``runs/<category>/accepted/`` by the workspace's run; return it and the outputs copied.

    Copies ``dvc.lock``, ``params.yaml``, the metrics (as ``metrics.json``), ``run.json`` and every
    DVC output under one of the ``publish`` prefixes, into a new folder swapped in at the end.
    """
    target = accepted_dir(project, category)
    incoming = target.with_name(f".accepted.{run['run_id']}")
    remove_path(incoming)
    prefixes = [p.strip("/") for p in publish]
    for name in ("dvc.lock", "params.yaml"):
        copy_path(workspace / name, incoming / name)
    published = [
        out
        for out in lock_outputs(workspace)
        if any(out == p or out.startswith(f"{p}/") for p in prefixes) and (workspace / out).exists()
    ]
    for out in published:
        copy_path(workspace / out, incoming / out)
    copy_path(workspace / metrics_file, incoming / "metrics.json")
    write_json(incoming / "run.json", run)
    swap_in(incoming, target)
    return target, published


def update_project(project: Path, workspace: Path) -> list[str]:
    """Make the project's workspace show the accepted run: its outputs, then its ``dvc.lock``.

    Only valid when the run used the project's own ``params.yaml`` (the caller checks), so that
    ``dvc status`` in the project stays clean. Returns the output paths replaced.
    """
    outs = lock_outputs(workspace)
    for out in outs:
        if (workspace / out).exists():
            replace_path(workspace / out, project / out)
    replace_path(workspace / "dvc.lock", project / "dvc.lock")
    return outs


def history_record(
    run_id: str,
    category: str,
    *,
    state: str,
    metrics: Metrics | None,
    decision: Decision | None,
    reason: str | None = None,
    data_hash: str | None = None,
    flow_run_id: str | None = None,
) -> dict[str, Any]:
    """The ``runs/history/<run_id>.json`` record the dashboard reads."""
    return {
        "run_id": run_id,
        "category": category,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "state": state,
        "metrics": metrics,
        "accepted": bool(decision and decision.accepted and state == "Completed"),
        "deltas": decision.deltas if decision else {},
        "reason": reason,
        "regressions": decision.regressions if decision else [],
        "data_hash": data_hash,
        "flow_run_id": flow_run_id,
    }


def write_history(project: Path, record: dict[str, Any]) -> Path:
    """Write the run's history record and the category's ``last_run.json``; return the record's path."""
    last = {key: record[key] for key in ("run_id", "finished", "state", "accepted", "data_hash")}
    write_json(category_dir(project, record["category"]) / "last_run.json", last)
    return write_json(project / RECORDS_DIR / "history" / f"{record['run_id']}.json", record)
