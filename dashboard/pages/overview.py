"""Overview: every category x method with its metrics (best per category highlighted), and history."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import data, history, live, ui
from diffad.inference.serving import served_method

MAIN_METRICS = [
    "image_auroc",
    "image_ap",
    "pixel_auroc",
    "aupro",
    "image_f1",
    "image_false_alarm_rate",
    "image_miss_rate",
    "image_f1_oracle",
    "ms_per_image",
]
HEADLINE = ["image_auroc", "pixel_auroc", "aupro"]
BEST_STYLE = "font-weight: bold; background-color: rgba(33, 195, 84, 0.25)"

st.title("Overview")
root = data.project_root()
cat = ui.category()
table = data.metrics_table(data.find_categories(root))
if cat.name not in set(table["category"]):  # say why: its metrics.json is missing, unreadable or malformed
    try:
        data.read_metrics(cat)
    except data.MissingArtifact as exc:
        (ui.stop_missing if table.empty else ui.warn_missing)(exc)

# ---- headline: the best method of the selected category per headline metric
mine = table[table["category"] == cat.name]
summary = data.read_summary(cat)
facts = [f"category **{cat.name}**"]
if summary is not None:
    unknown = f" (+{summary.n_unknown} unlabelled: scored and shown on Heatmaps, not measured)"
    facts.append(f"{summary.n_test} labelled test images" + (unknown if summary.n_unknown else ""))
    facts.append("with ground-truth masks" if summary.has_masks else "no masks: pixel metrics skipped")
    if summary.evaluation_resolution:
        side = summary.evaluation_resolution
        facts.append(f"maps and pixel metrics at {side}×{side} px")
if not mine.empty:
    served = served_method(list(mine["method"]))
    facts.append(f"`diffad predict` serves **{served}** (its `--method` picks another)")
st.markdown(" · ".join(facts))
live.live_model_section(root, cat)
if not mine.empty:
    for column, key in zip(st.columns(len(HEADLINE)), HEADLINE, strict=True):
        values = mine[key].astype(float)
        if values.notna().any():
            best = mine.loc[values.idxmax()]
            column.metric(
                f"best {data.METRIC_LABELS[key]}", f"{best[key]:.3f}", help=f"method: {best['method']}"
            )
            column.caption(f"**{best['method']}**")

# ---- category x method table, best per category and column highlighted
st.subheader("Methods compared")
labels = [data.METRIC_LABELS[c] for c in MAIN_METRICS]
shown = table[["category", "method", *MAIN_METRICS]].rename(columns=data.METRIC_LABELS)
best = data.best_mask(table, MAIN_METRICS)[["category", "method", *MAIN_METRICS]].to_numpy()
css = pd.DataFrame(np.where(best, BEST_STYLE, ""), index=shown.index, columns=shown.columns)
formats = {label: "{:.1f}" if label == data.METRIC_LABELS["ms_per_image"] else "{:.3f}" for label in labels}
st.table(shown.style.format(formats, na_rep="–").apply(lambda _: css, axis=None), hide_index=True)
st.caption(
    "Bold green: the best value in its category (highest; lowest for ms / image). The false-alarm "
    "and miss rates are never marked: each alone is one side of the threshold's trade-off. "
    "F1, false-alarm and miss rate on the test images at the shipped threshold (chosen on the "
    "calibration images, see Operating point); oracle max F1 picks its threshold on the test labels "
    "(optimistic, as papers report it); – = not applicable (e.g. no masks, or no heatmap)."
)

with st.expander("Per defect type"):
    try:
        per_defect, notes = data.read_per_defect(cat)
    except data.MissingArtifact as exc:
        st.info(f"`{exc.path.name}`: {exc.reason}.")
    else:
        key = st.selectbox(
            "Metric", data.METRIC_KEYS, format_func=data.METRIC_LABELS.get, key="defect_metric"
        )
        pivot = per_defect.pivot_table(
            index="defect", columns="method", values=key, aggfunc="first", dropna=False
        )
        pivot = pivot[sorted(pivot.columns, key=data.method_rank)]
        st.dataframe(pivot.style.format("{:.3f}", na_rep="–"))
        for note in notes:
            st.caption(note)

# ---- history: DVC experiments and Prefect run records, with deltas to the previous run
st.subheader("History")
dvc_runs, dvc_note = history.dvc_experiments(str(root))
records, bad = history.read_records_as_runs(root)
runs = [r for r in [*dvc_runs, *records] if r.category in (None, cat.name)]
if not runs:
    st.info(
        "No past runs yet. Each `dvc exp run` (see `dvc exp show`) and each Prefect pipeline run "
        f"(`runs/history/*.json`) adds a row here.{f' DVC: {dvc_note}.' if dvc_note else ''}"
    )
else:
    metric = st.selectbox(
        "Metric", data.METRIC_KEYS, format_func=data.METRIC_LABELS.get, key="history_metric"
    )
    past = history.history_table(runs, metric)
    methods = [c for c in past.columns if c in {m for r in runs for m in r.metrics}]
    measured = past[past[methods].notna().any(axis=1)] if methods else past
    last = (measured if not measured.empty else past).iloc[-1]
    earlier = len(measured) > 1
    st.markdown(
        f"Latest run **{last['run']}** ({last['source']}, {last['time'] or 'no time'})"
        + (" vs the one before:" if earlier else ", the only one so far:")
    )
    for column, m in zip(st.columns(max(len(methods), 1)), methods, strict=False):
        value, delta = last[m], last[f"Δ {m}"]
        column.metric(
            m,
            "–" if pd.isna(value) else f"{value:.3f}",
            None if pd.isna(delta) or math.isclose(delta, 0.0) else f"{delta:+.3f}",
            delta_color="inverse" if metric in data.LOWER_IS_BETTER else "normal",
        )
    shown = past.copy()  # text, not a Styler: Streamlit printed an all-missing Δ column as "None"
    for m in methods:
        shown[m] = [f"{v:.3f}" if pd.notna(v) else "–" for v in past[m]]
        shown[f"Δ {m}"] = [f"{v:+.3f}" if pd.notna(v) else "–" for v in past[f"Δ {m}"]]
    st.dataframe(shown, hide_index=True)
if bad:
    st.caption(f"{bad} file(s) in runs/history/ could not be read and were skipped.")
