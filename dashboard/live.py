"""Which model is live for a category, and how the latest retrain attempt compares with it.

Live is the model that serves the category (:func:`diffad.inference.serving.served_model`: the
registry's prod version with ``$DIFFAD_REGISTRY``, else the category's accepted retrain, else the
project's workspace when it is of that category), the same answer the monitor and the promotion
use. The latest attempt is the newest run record of the category, whatever its outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import data
from diffad.artifacts.records import Metrics
from diffad.artifacts.runs import OUTCOME_TEXT, RunRecord, read_run_records
from diffad.inference.serving import ACCEPTED, REGISTRY, ServedModel, served_model

HEADLINE = ("image_auroc", "pixel_auroc", "aupro")


@dataclass(frozen=True)
class LiveModel:
    where: str  # what serves it, in words
    run_id: str
    time: str | None
    metrics: Metrics


def live_model(root: Path, cat: data.Category) -> LiveModel | None:
    """The model that serves ``cat`` now (see the module docstring), or None without metrics."""
    served = served_model(root, cat.name, data.registry_clone(root))
    if served is None or served.metrics is None:
        return None
    try:
        metrics = data.contract_load(data.records.read_metrics, served.metrics, served.metrics)
    except data.MissingArtifact:
        return None
    return LiveModel(_where(served), served.run_id or "workspace", served.since, metrics)


def _where(served: ServedModel) -> str:
    if served.source == REGISTRY:
        return f"{served.version}, prod in the model registry `{data.registry_url()}`"
    if served.source == ACCEPTED:
        return "accepted retrain (runs/…/accepted)"
    return "the workspace's reports (last `dvc repro`, dvc.lock)"


def latest_attempt(root: Path, category: str) -> RunRecord | None:
    records, _ = read_run_records(data.runs_dir(root))
    mine = [r for r in records if r.category == category]
    return mine[-1] if mine else None


def comparison(live: LiveModel, attempt: RunRecord) -> pd.DataFrame:
    """Per method and headline metric: live, latest attempt, attempt − live."""
    rows = []
    for method in sorted(set(live.metrics) | set(attempt.metrics or {}), key=data.method_rank):
        row = {"method": method}
        for key in HEADLINE:
            a = data.as_number((live.metrics.get(method) or {}).get(key))
            b = data.as_number(((attempt.metrics or {}).get(method) or {}).get(key))
            row[f"live {data.METRIC_LABELS[key]}"], row[f"attempt {data.METRIC_LABELS[key]}"] = a, b
            row[f"Δ {data.METRIC_LABELS[key]}"] = b - a
        rows.append(row)
    return pd.DataFrame(rows)


def _best(metrics: Metrics, key: str) -> str:
    values = {m: data.as_number(v.get(key)) for m, v in metrics.items()}
    values = {m: v for m, v in values.items() if v == v}
    if not values:
        return f"{data.METRIC_LABELS[key]} –"
    method = max(values, key=values.get)
    return f"{data.METRIC_LABELS[key]} {values[method]:.3f} ({method})"


def live_model_section(root: Path, cat: data.Category) -> None:
    """The "Live model" box of the Overview."""
    st.subheader("Live model")
    live = live_model(root, cat)
    attempt = latest_attempt(root, cat.name)
    if live is None:
        st.info("No model serves this category yet: run `dvc repro` or a Prefect retrain.")
    else:
        best = " · ".join(_best(live.metrics, key) for key in HEADLINE)
        st.markdown(f"**`{live.run_id}`**: {live.where}, {live.time or 'time unknown'}. Best: {best}.")
    if attempt is None:
        st.caption("No retrain attempt recorded for this category (`runs/history/`).")
        return
    verdict = OUTCOME_TEXT[attempt.outcome]
    text = f"Latest retrain attempt **`{attempt.run_id}`** ({attempt.finished}): **{verdict}**"
    if live is not None and attempt.run_id == live.run_id:
        text += " — it is the live model"
    (st.success if attempt.accepted else st.warning)(
        text + (f".\n\n{attempt.reason}" if attempt.reason else ".")
    )
    if attempt.rule:
        st.caption(f"Rule: {attempt.rule}")
    if live is not None and attempt.metrics:
        table = comparison(live, attempt)
        st.dataframe(table.style.format("{:.3f}", subset=table.columns[1:], na_rep="–"), hide_index=True)
