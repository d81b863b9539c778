"""Past runs: DVC experiments, the Prefect flow's run records, and Prefect's REST API.

Sources, all optional (an absent or malformed one gives no rows, never an exception):

- ``dvc exp show --json`` (DVC 3.x): a list of ``{"rev", "name", "data": {"timestamp", "params":
  {"params.yaml": {"data": {...}}}, "metrics": {"metrics/<method>.json": {"data": {...}}}}, "error",
  "experiments": [{"name", "revs": [<same shape>]}] | null}``; the ``workspace`` entry is the
  current ``reports/``. DVC leaves null metric values out of this JSON.
- ``runs/history/*.json``: one run record per retrain, whatever its outcome
  (:class:`diffad.artifacts.runs.RunRecord`, read through the artifact contract).
- ``POST {PREFECT_API_URL}/flow_runs/filter`` for the Runs page (no prefect import here).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.data import METRIC_KEYS, as_number, method_rank, runs_dir
from diffad.artifacts.layout import HEADLINE, PARAMS_FILE
from diffad.artifacts.runs import RunRecord, read_run_records

WORKSPACE = "workspace"


@dataclass(frozen=True)
class Run:
    """One past run's metrics, from DVC or from a Prefect run record."""

    source: str  # "dvc" | "prefect"
    name: str
    time: str | None  # ISO 8601
    category: str | None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    state: str | None = None
    accepted: bool | None = None
    outcome: str | None = None  # run records: accepted / not_promoted / rejected / failed
    reason: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # flattened "section.key": value (DVC)
    changed: dict[str, Any] = field(default_factory=dict)  # params that differ from its baseline commit


def _clean_metrics(raw: Any) -> dict[str, dict[str, float]]:
    if not isinstance(raw, dict):
        return {}
    return {m: {k: as_number(v.get(k)) for k in METRIC_KEYS} for m, v in raw.items() if isinstance(v, dict)}


def _headline(metrics: Any) -> dict[str, Any]:
    """``{method: {key: value}}`` from DVC's ``{"metrics/<method>.json": {"data": {...}}}``."""
    files = metrics.items() if isinstance(metrics, dict) else []
    return {
        PurePosixPath(path).stem: _get(entry, "data")
        for path, entry in files
        if PurePosixPath(path).parent == PurePosixPath(HEADLINE) and path.endswith(".json")
    }


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}{key}." if isinstance(value, dict) else f"{prefix}{key}"))
    return {k.rstrip("."): v for k, v in flat.items()}


def _params(entry: Any) -> dict[str, Any]:
    return _flatten(_get(entry, "data", "params", PARAMS_FILE, "data") or {})


def _dvc_run(entry: Any, baseline: dict[str, Any] | None) -> Run | None:
    """One revision as a Run; ``baseline``: the parameters of the commit it is compared with."""
    data = _get(entry, "data")
    metrics = _clean_metrics(_headline(_get(data, "metrics")))
    if not metrics:
        return None
    rev = str(entry.get("rev") or "")
    params = _params(entry)
    category = params.get("data.category")
    changed = {k: v for k, v in params.items() if baseline is not None and baseline.get(k) != v}
    return Run(
        "dvc",
        WORKSPACE if rev == WORKSPACE else str(entry.get("name") or rev[:7] or "?"),
        _get(data, "timestamp"),
        category if isinstance(category, str) else None,
        metrics,
        params=params,
        changed=changed,
    )


def parse_dvc_exp_show(payload: Any) -> list[Run]:
    """Runs (the workspace, committed baselines and their experiments) from ``dvc exp show --json``;
    an experiment's (and the workspace's) ``changed`` parameters are those that differ from its
    baseline commit (the commit listed after the workspace)."""
    entries = [e for e in payload if isinstance(e, dict)] if isinstance(payload, list) else []
    head = next((_params(e) for e in entries if e.get("rev") != WORKSPACE), None)
    runs: list[Run | None] = []
    for entry in entries:
        is_workspace = entry.get("rev") == WORKSPACE
        runs.append(_dvc_run(entry, head if is_workspace else None))
        for exp in entry.get("experiments") or []:
            for rev in _get(exp, "revs") or []:
                runs.append(_dvc_run(rev, _params(entry)))
    return [r for r in runs if r is not None]


def changed_params(run: Run) -> str:
    """``a.b=1, c=x``: what a DVC run changed against its baseline commit."""
    return ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in sorted(run.changed.items()))


def _dvc_executable() -> str | None:
    beside = Path(sys.executable).with_name("dvc")  # the virtualenv's, when the PATH lacks it
    return str(beside) if beside.is_file() else shutil.which("dvc")


@st.cache_data(show_spinner="Reading DVC experiments…", ttl=60)
def dvc_experiments(root: str, timeout: float = 30.0) -> tuple[list[Run], str]:
    """(runs, note): ``dvc exp show --json`` in ``root``; the note says why there are none."""
    dvc = _dvc_executable()
    if not (Path(root) / ".dvc").is_dir():
        return [], "not a DVC repository"
    if dvc is None:
        return [], "dvc is not installed"
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    try:
        done = subprocess.run(
            [dvc, "exp", "show", "--json"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"`dvc exp show` failed ({exc})"
    if done.returncode != 0:
        return [], f"`dvc exp show` failed: {done.stderr.strip()[-300:]}"
    try:
        payload = json.loads(done.stdout[done.stdout.find("[") :] if "[" in done.stdout else done.stdout)
    except json.JSONDecodeError:
        return [], "`dvc exp show --json` printed no JSON"
    runs = parse_dvc_exp_show(payload)
    return runs, "" if runs else f"no experiment has headline metrics ({HEADLINE}/<method>.json)"


def _record_run(record: RunRecord) -> Run:
    return Run(
        "prefect",
        record.run_id,
        record.finished,
        record.category,
        _clean_metrics(record.metrics),
        record.state,
        record.accepted,
        record.outcome,
        record.reason,
    )


def run_records(root: Path) -> tuple[list[RunRecord], int]:
    """(every run record, oldest first; number of unreadable files) under ``runs/history/``."""
    records, bad = read_run_records(runs_dir(root))
    return records, len(bad)


def read_records_as_runs(root: Path) -> tuple[list[Run], int]:
    """The run records as :class:`Run` rows (records without metrics included)."""
    records, bad = run_records(root)
    return [_record_run(r) for r in records], bad


def history_table(runs: list[Run], metric: str) -> pd.DataFrame:
    """Runs oldest first: run, source, time, outcome, reason, the parameters a DVC run changed
    against its baseline commit, then per method its ``metric`` and ``Δ <method>`` (the change
    from the previous run that has a value for that method)."""
    ordered = sorted(runs, key=lambda r: (r.time is None, r.time or ""))
    methods = sorted({m for r in ordered for m in r.metrics}, key=method_rank)
    table = pd.DataFrame(
        {
            "run": [r.name for r in ordered],
            "source": [r.source for r in ordered],
            "time": [r.time or "" for r in ordered],
            "outcome": [r.outcome or r.state or "" for r in ordered],
            "reason": [r.reason or "" for r in ordered],
        }
    )
    table["params changed"] = [changed_params(r) for r in ordered]
    for m in methods:
        values = pd.Series([r.metrics.get(m, {}).get(metric, np.nan) for r in ordered], dtype=float)
        table[m] = values
        table[f"Δ {m}"] = values - values.ffill().shift(1)
    return table


# ------------------------------------------------------------------ Prefect REST


class PrefectUnavailable(Exception):
    """The Prefect API did not answer usefully; the message says why."""


def _post(url: str, body: dict, timeout: float) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise PrefectUnavailable(f"{url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:  # refused, timeout, not JSON
        raise PrefectUnavailable(f"{url}: {getattr(exc, 'reason', exc)}") from None


NOT_YET_SCHEDULED_TO_START = {"state": {"type": {"not_any_": ["SCHEDULED"]}}}


def prefect_runs(api_url: str, limit: int = 20, timeout: float = 3.0) -> pd.DataFrame:
    """Recent flow runs, newest first: flow, run, state, start, end, duration_s, parameters.

    Runs still waiting for their scheduled time are left out: a deployment's cron schedule keeps
    days of future runs, which sort first by start time and would push every real run off the list.
    """
    base = api_url.rstrip("/")
    query = {"limit": limit, "sort": "START_TIME_DESC", "flow_runs": NOT_YET_SCHEDULED_TO_START}
    runs = _post(f"{base}/flow_runs/filter", query, timeout)
    if not isinstance(runs, list):
        raise PrefectUnavailable(f"{base}/flow_runs/filter: unexpected answer {str(runs)[:200]}")
    runs = [r for r in runs if isinstance(r, dict)]
    flow_ids = sorted({str(r.get("flow_id")) for r in runs if r.get("flow_id")})
    names: dict[str, str] = {}
    if flow_ids:
        try:
            flows = _post(f"{base}/flows/filter", {"flows": {"id": {"any_": flow_ids}}}, timeout)
            names = {str(f.get("id")): str(f.get("name")) for f in flows if isinstance(f, dict)}
        except PrefectUnavailable:  # names are a nicety; the runs are what matter
            pass
    rows = [
        {
            "flow": names.get(str(r.get("flow_id")), str(r.get("flow_id") or "")),
            "run": str(r.get("name") or r.get("id") or ""),
            "state": str(r.get("state_name") or _get(r, "state", "name") or r.get("state_type") or ""),
            "start": str(r.get("start_time") or r.get("expected_start_time") or ""),
            "end": str(r.get("end_time") or ""),
            "duration_s": as_number(r.get("total_run_time")),
            "parameters": json.dumps(r.get("parameters") or {}, default=str),
        }
        for r in runs
    ]
    return pd.DataFrame(rows, columns=["flow", "run", "state", "start", "end", "duration_s", "parameters"])
