"""Accept or reject a finished retrain by its metrics, promote what was accepted, record every run.

Acceptance rule (all metrics "higher is better", ``tolerance`` absolute):

    regression(m, k)  <=>  base[m][k] is a number
                           and (new[m][k] is missing/NaN  or  new[m][k] < base[m][k] - tol)
    accepted          <=>  no regression for any method m of the baseline and any k in ``keys``

The baseline (:func:`baseline_for`) is the metrics of the model that serves the category
(:func:`diffad.inference.serving.served_model`): its last accepted run; before the first one, the
project's workspace reports when they are of that category; only when there is neither is a run
accepted on producing metrics. (With a model registry the retrain flow judges against the
registry's prod model first, the same order's first step.) The rule as applied is written into
the run record.

Records, all inside the project (paths and shapes: :mod:`diffad.artifacts`; the dashboard reads them)::

    runs/<category>/accepted/      the accepted run: metrics.json, dvc.lock, params.yaml, run.json
                                   and the published outputs (reports/, models/) in project layout;
                                   replaced as a whole, only on acceptance
    runs/<category>/last_run.json  the latest attempt (accepted or not): run id, data hash, outcome
    runs/history/<run_id>.json     one per run, whatever its outcome (diffad.artifacts.runs.RunRecord)
    runs/history/<run_id>/validation/  that run's validation report

``dvc.lock`` + ``params.yaml`` in ``accepted/`` are the source of truth for an accepted run: copied
into a checkout, ``dvc checkout`` (or ``dvc pull`` from the remote) restores every output.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from diffad.artifacts.layout import ProjectLayout
from diffad.artifacts.records import Metrics, finite, read_metrics
from diffad.artifacts.runs import Baseline, read_accepted, write_accepted_info
from diffad.core.errors import ConfigError
from diffad.inference.serving import WORKSPACE, served_model
from flows.workspace import copy_path, lock_outputs, remove_path, replace_path, swap_in

DEFAULT_KEYS = ("image_auroc", "pixel_auroc", "aupro")  # compared for acceptance, higher is better
NO_BASELINE = Baseline(
    "none", "nothing to compare with: no accepted run and no served reports of this category"
)


@dataclass(frozen=True)
class Decision:
    """Outcome of comparing a run's metrics with its baseline."""

    accepted: bool
    deltas: dict[str, dict[str, float | None]] = field(default_factory=dict)  # new - baseline
    regressions: list[str] = field(default_factory=list)  # "method.key: new < baseline - tol"
    baseline: Baseline = NO_BASELINE
    rule: str = ""


def _number(value: Any) -> float | None:
    return finite(value)


def acceptance_rule(baseline: Baseline, tolerance: float, keys: Sequence[str]) -> str:
    """The rule as applied to one run, in words (written into its record and report)."""
    if baseline.metrics is None:
        return f"accepted when it produced metrics ({baseline.description})"
    return (
        f"accepted when no {'/'.join(keys)} of any method of the baseline drops by more than "
        f"{tolerance:g} (a missing value counts as a drop); baseline: {baseline.description}"
    )


def baseline_for(project: Path, category: str) -> Baseline:
    """What a new run of ``category`` must not be worse than (see the module docstring)."""
    project = Path(project)
    served = served_model(project, check_category(category))
    if served is None or served.metrics is None:
        return NO_BASELINE
    metrics = read_metrics(served.metrics)
    if served.source == WORKSPACE:
        where = served.metrics.relative_to(project)
        return Baseline(
            "served", f"the served reports of {category} (project workspace {where})", None, metrics
        )
    return Baseline("accepted", f"accepted run {served.run_id}", served.run_id, metrics)


def compare_metrics(
    new: Mapping[str, Mapping[str, Any]],
    previous: Mapping[str, Mapping[str, Any]] | Baseline | None,
    tolerance: float,
    keys: Sequence[str] = DEFAULT_KEYS,
) -> Decision:
    """Apply the acceptance rule of the module docstring; deltas cover every shared numeric key.

    ``previous``: a :class:`Baseline`, or bare metrics (an accepted run's)."""
    if tolerance < 0:
        raise ConfigError(f"tolerance: {tolerance!r} must be >= 0")
    if isinstance(previous, Baseline):
        baseline = previous
    elif previous:
        baseline = Baseline(
            "accepted", "the last accepted run", None, {m: dict(v) for m, v in previous.items()}
        )
    else:
        baseline = NO_BASELINE
    rule = acceptance_rule(baseline, tolerance, keys)
    previous = baseline.metrics
    if not new:
        return Decision(
            accepted=False, regressions=["no metrics were produced"], baseline=baseline, rule=rule
        )
    if not previous:
        return Decision(accepted=True, baseline=baseline, rule=rule)
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
                regressions.append(f"{method}.{key}: missing (baseline had {prev:.4f})")
            elif cur < prev - tolerance:
                regressions.append(f"{method}.{key}: {cur:.4f} < {prev:.4f} - {tolerance:g}")
    return Decision(
        accepted=not regressions, deltas=deltas, regressions=regressions, baseline=baseline, rule=rule
    )


def check_category(name: str) -> str:
    """``name`` if it is usable as one folder name, else :class:`ConfigError`."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"category: {name!r} is not a usable folder name")
    return name


def accepted_metrics(project: Path, category: str) -> Metrics | None:
    """Metrics of the category's last accepted run, or None before the first one."""
    accepted = read_accepted(ProjectLayout(project).runs, check_category(category))
    return accepted.metrics if accepted else None


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
    runs, ws = ProjectLayout(project).runs, ProjectLayout(workspace)
    target = runs.accepted(check_category(category))
    incoming = runs.incoming(category, run["run_id"])
    remove_path(incoming)
    copy_path(ws.lock, incoming / ws.lock.name)
    copy_path(ws.params, incoming / ws.params.name)
    prefixes = [p.strip("/") for p in publish]
    published = [
        out
        for out in lock_outputs(workspace)
        if any(out == p or out.startswith(f"{p}/") for p in prefixes) and (workspace / out).exists()
    ]
    for out in published:
        copy_path(workspace / out, incoming / out)
    copy_path(workspace / metrics_file, incoming / target.metrics.name)
    write_accepted_info(incoming / target.run.name, run)
    swap_in(incoming, target.root)
    return target.root, published


def update_project(project: Path, workspace: Path) -> list[str]:
    """Make the project's workspace show the accepted run: its outputs, then its ``dvc.lock``.

    Only valid when the run used the project's own ``params.yaml`` (the caller checks), so that
    ``dvc status`` in the project stays clean. Returns the output paths replaced.
    """
    outs = lock_outputs(workspace)
    for out in outs:
        if (workspace / out).exists():
            replace_path(workspace / out, project / out)
    replace_path(ProjectLayout(workspace).lock, ProjectLayout(project).lock)
    return outs
