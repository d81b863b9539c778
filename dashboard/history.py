"""Past runs: DVC experiments, the Prefect flow's run records, and Prefect's REST API.

Sources, all optional (an absent or malformed one gives no rows, never an exception):

- ``dvc exp show --json`` (DVC 3.x): a list of ``{"rev", "name", "data": {"timestamp", "params":
  {"params.yaml": {"data": {...}}}, "metrics": {"reports/metrics.json": {"data": {...}}}}, "error",
  "experiments": [{"name", "revs": [<same shape>]}] | null}``; the ``workspace`` entry is skipped
  (it is the current ``reports/``). DVC leaves null metric values out of this JSON.
- ``runs/history/*.json``, one file per finished Prefect pipeline run:
  ``{"run_id": str, "flow_run_name": str, "category": str, "finished": ISO 8601, "state": str,
  "metrics": {method: {metric: value}}, "accepted": bool}``.
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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.data import METRIC_KEYS, as_number, method_rank

METRICS_FILE = "reports/metrics.json"


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


def _clean_metrics(raw: Any) -> dict[str, dict[str, float]]:
    if not isinstance(raw, dict):
        return {}
    return {m: {k: as_number(v.get(k)) for k in METRIC_KEYS} for m, v in raw.items() if isinstance(v, dict)}


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _dvc_run(entry: Any) -> Run | None:
    data = _get(entry, "data")
    metrics = _clean_metrics(_get(data, "metrics", METRICS_FILE, "data"))
    if not metrics:
        return None
    rev = str(entry.get("rev") or "")
    category = _get(data, "params", "params.yaml", "data", "data", "category")
    return Run(
        "dvc",
        str(entry.get("name") or rev[:7] or "?"),
        _get(data, "timestamp"),
        category if isinstance(category, str) else None,
        metrics,
    )


def parse_dvc_exp_show(payload: Any) -> list[Run]:
    """Runs (committed baselines and their experiments) from ``dvc exp show --json``'s output."""
    runs: list[Run | None] = []
    for entry in payload if isinstance(payload, list) else []:
        if not isinstance(entry, dict):
            continue
        if entry.get("rev") != "workspace":
            runs.append(_dvc_run(entry))
        for exp in entry.get("experiments") or []:
            for rev in _get(exp, "revs") or []:
                runs.append(_dvc_run(rev))
    return [r for r in runs if r is not None]


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
    return runs, "" if runs else "no experiment has reports/metrics.json"


def read_run_records(root: Path) -> tuple[list[Run], int]:
    """(runs, number of unreadable files) from ``runs/history/*.json``."""
    runs, bad = [], 0
    for path in sorted(root.glob("runs/history/*.json")):
        try:
            raw = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            bad += 1
            continue
        metrics = _clean_metrics(raw.get("metrics")) if isinstance(raw, dict) else {}
        if not metrics:
            bad += 1
            continue
        accepted = raw.get("accepted")
        runs.append(
            Run(
                "prefect",
                str(raw.get("flow_run_name") or raw.get("run_id") or path.stem),
                raw.get("finished") if isinstance(raw.get("finished"), str) else None,
                raw.get("category") if isinstance(raw.get("category"), str) else None,
                metrics,
                str(raw.get("state") or "") or None,
                accepted if isinstance(accepted, bool) else None,
            )
        )
    return runs, bad


def history_table(runs: list[Run], metric: str) -> pd.DataFrame:
    """Runs oldest first: run, source, time, then per method its ``metric`` and ``Δ <method>`` (the
    change from the previous run that has a value for that method)."""
    ordered = sorted(runs, key=lambda r: (r.time is None, r.time or ""))
    methods = sorted({m for r in ordered for m in r.metrics}, key=method_rank)
    table = pd.DataFrame(
        {
            "run": [r.name for r in ordered],
            "source": [r.source for r in ordered],
            "time": [r.time or "" for r in ordered],
            "state": [r.state or "" for r in ordered],
            "accepted": [("" if r.accepted is None else "yes" if r.accepted else "no") for r in ordered],
        }
    )
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


def prefect_runs(api_url: str, limit: int = 20, timeout: float = 3.0) -> pd.DataFrame:
    """Recent flow runs, newest first: flow, run, state, start, end, duration_s, parameters."""
    base = api_url.rstrip("/")
    runs = _post(f"{base}/flow_runs/filter", {"limit": limit, "sort": "START_TIME_DESC"}, timeout)
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
