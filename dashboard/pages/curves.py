"""Curves: ROC, PR and PRO per method, overlaid (altair, from reports/curves/*.csv)."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data, ui
from diffad.artifacts.layout import REPORTS, ReportsDir

# curve -> (title, x axis, y axis, the metrics.json key that summarises it)
CURVES = {
    "roc": ("ROC", "false positive rate", "true positive rate", "image_auroc"),
    "pr": ("Precision-recall", "recall", "precision", "image_ap"),
    "pro": ("Per-region overlap (PRO)", "false positive rate", "per-region overlap", "aupro"),
}


def curve_chart(frame: pd.DataFrame, name: str, summary: dict[str, float]) -> alt.Chart:
    """One line per method, in file order; the legend names the method and its summary metric."""
    title, x_title, y_title, key = CURVES[name]
    frame = frame.assign(
        order=frame.groupby("method").cumcount(),
        legend=frame["method"].map(
            lambda m: f"{m} ({data.METRIC_LABELS[key]} {summary[m]:.3f})" if pd.notna(summary.get(m)) else m
        ),
    )
    legends = frame.drop_duplicates("method").set_index("method")["legend"]
    legends = legends[sorted(legends.index, key=data.method_rank)]
    lines = (
        alt.Chart(frame, title=title, height=420)
        .mark_line(interpolate="step-after" if name == "roc" else "linear")
        .encode(
            x=alt.X(
                "x:Q",
                title=x_title,
                scale=alt.Scale(domain=[0, 1] if name != "pro" else [0, frame["x"].max()]),
            ),
            y=alt.Y("y:Q", title=y_title, scale=alt.Scale(domain=[0, 1])),
            color=alt.Color(
                "legend:N",
                title=None,
                legend=alt.Legend(orient="bottom", columns=3, labelLimit=0),
                scale=alt.Scale(domain=list(legends), range=[data.method_colour(m) for m in legends.index]),
            ),
            order="order:Q",
            tooltip=["method", alt.Tooltip("x:Q", format=".3f"), alt.Tooltip("y:Q", format=".3f")],
        )
    )
    if name != "roc":
        return lines
    chance = (
        alt.Chart(pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0]}), height=420)
        .mark_line(color="gray", strokeDash=[4, 4])
        .encode(x="x:Q", y="y:Q")
    )
    return chance + lines


st.title("Curves")
cat = ui.category(str(ReportsDir(Path(REPORTS)).curve_table("roc")))
curves = ui.need(data.read_curves, cat)
try:
    metrics = data.read_metrics(cat)
except data.MissingArtifact:
    metrics = pd.DataFrame(columns=list(data.METRIC_KEYS))
methods = sorted({m for frame in curves.values() for m in frame["method"].astype(str)}, key=data.method_rank)
chosen = st.multiselect("Methods", methods, default=methods)
for tab, name in zip(st.tabs([CURVES[n][0] for n in CURVES]), CURVES, strict=True):
    with tab:
        if name not in curves:
            why = " PRO needs ground-truth masks." if name == "pro" else ""
            st.info(f"`{cat.files.curve_table(name).relative_to(cat.reports.parent)}` is not there.{why}")
            continue
        frame = curves[name][curves[name]["method"].astype(str).isin(chosen)]
        if frame.empty:
            st.info("No curve for the selected methods.")
            continue
        summary = metrics[CURVES[name][3]].to_dict() if CURVES[name][3] in metrics else {}
        st.altair_chart(curve_chart(frame, name, summary), width="stretch")
