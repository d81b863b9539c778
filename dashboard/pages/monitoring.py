"""Monitoring: production scores over time against the threshold, and the drift statistics.

The same computation as the monitor flow (:mod:`diffad.monitoring.drift`) on the served bundle's
calibration scores and the ``monitoring`` section of params.yaml.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from dashboard import data, ui
from diffad.artifacts.layout import BundleDir
from diffad.artifacts.runs import read_bundle_manifest
from diffad.config import load_params
from diffad.core.errors import DiffadError
from diffad.inference.scores_log import bundle_id
from diffad.monitoring.drift import drift_statistics, recent_window
from diffad.monitoring.settings import MonitoringSettings


def monitoring_config(root: Path) -> MonitoringSettings:
    try:
        return load_params(root / "params.yaml").monitoring
    except DiffadError:
        return MonitoringSettings()


st.title("Monitoring")
root = data.project_root()
cat, log_path, log = ui.production_scores()
if cat.bundle is None:
    ui.stop_missing(data.MissingArtifact(BundleDir(root / "models/bundle").manifest))
meta = data.contract_load(read_bundle_manifest, BundleDir(cat.bundle).manifest, BundleDir(cat.bundle))
served = bundle_id(cat.bundle)
methods = sorted(log["method"].unique())
method = st.selectbox("Method", methods)
cfg = monitoring_config(root)
rows = log[log["method"] == method].sort_values("time", kind="stable")
window = recent_window(log, served, method, cfg.window)
thresholds = meta["thresholds"].get(method)
if thresholds is None:
    st.warning(f"The served bundle has no method {method!r}.")
    st.stop()
report = drift_statistics(
    window["score"].to_numpy(), np.asarray(thresholds["good_scores"]), float(thresholds["threshold"]), cfg
)

first, second, third, fourth = st.columns(4)
first.metric(
    "Images in the window", f"{report.n}", help=f"last {cfg.window} scored by the served bundle {served}"
)
if report.enough:
    second.metric(
        "Share over threshold",
        f"{report.alarm_share:.1%}",
        f"{report.alarm_share - report.calibration_alarm_share:+.1%} vs calibration",
        delta_color="inverse",
        help=f"one-sided Fisher test against the calibration share: p = {report.alarm_share_p_value:.2g}",
    )
    third.metric("KS statistic", f"{report.ks_statistic:.3f}", help=f"p = {report.p_value:.2g}")
    fourth.metric("Median shift", f"{report.median_shift:+.2f} σ", help="in calibration standard deviations")
(st.error if report.drifted else st.success if report.enough else st.info)(report.summary())

rows = rows.assign(served=np.where(rows["bundle_id"] == served, "served bundle", "earlier bundle"))
rows["over threshold (rolling share)"] = (
    rows["anomalous"].astype(float).rolling(min(cfg.window, 50), min_periods=1).mean()
)
points = (
    alt.Chart(rows, title=f"{method}: normalised score per image (threshold 100)")
    .mark_circle(size=40, opacity=0.7)
    .encode(
        x=alt.X("time:T", title="scored at (UTC)"),  # Vega's format: seconds when they differ
        y=alt.Y("norm_score:Q", title="score (0-1000)"),
        color=alt.Color("served:N", title=None),
        tooltip=["image", "norm_score", "anomalous", "bundle_id"],
    )
)
rule = (
    alt.Chart(pd.DataFrame({"y": [data.NORM_THRESHOLD]}))
    .mark_rule(strokeDash=[6, 4], color="#555")
    .encode(y="y:Q")
)
st.altair_chart(points + rule, width="stretch")
share = (
    alt.Chart(rows, title="Share of images over the threshold (rolling 50) vs the calibration share")
    .mark_line()
    .encode(
        x=alt.X("time:T", title="scored at (UTC)"),  # Vega's format: seconds when they differ
        y=alt.Y("over threshold (rolling share):Q", title="share"),
    )
)
base = (
    alt.Chart(pd.DataFrame({"y": [report.calibration_alarm_share]}))
    .mark_rule(strokeDash=[6, 4], color="#d62728")
    .encode(y="y:Q")
)
st.altair_chart(share + base, width="stretch")
st.caption(
    f"Drift: more alarms (Fisher test of the alarm counts p < {cfg.p_value} and the share over the "
    f"threshold above calibration by more than {cfg.alarm_share_excess}) or moved scores (KS p < "
    f"{cfg.p_value} and the median moved more than {cfg.median_shift} calibration std); params.yaml "
    "`monitoring`. The monitor flow (flows/monitor.py) then triggers a retrain."
)
