"""Runs: recent Prefect flow runs (when a Prefect API is reachable) and the pipeline's run records."""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from dashboard import data, history
from diffad.artifacts.runs import OUTCOME_TEXT

HOW_TO = (
    "To see flow runs here, start a Prefect server and point the dashboard at it:\n\n"
    "```bash\nprefect server start --host 127.0.0.1 --port 4200\n"
    "export PREFECT_API_URL=http://127.0.0.1:4200/api   # then restart `diffad dashboard`\n```\n"
    "See the README (orchestration with Prefect) for running the pipeline as a flow."
)

st.title("Runs")
st.subheader("Prefect flow runs")
api_url = os.environ.get("PREFECT_API_URL", "").strip()
if not api_url:
    st.info("`PREFECT_API_URL` is not set.\n\n" + HOW_TO)
else:
    try:
        runs = history.prefect_runs(api_url)
    except history.PrefectUnavailable as exc:
        st.warning(f"The Prefect API at `{api_url}` is not reachable ({exc}).\n\n" + HOW_TO)
    else:
        if runs.empty:
            st.info(f"The Prefect API at `{api_url}` has no flow runs yet.")
        else:
            st.caption(f"The {len(runs)} most recent flow runs at `{api_url}`, newest first.")
            st.dataframe(
                runs,
                hide_index=True,
                width="stretch",
                column_config={"duration_s": st.column_config.NumberColumn("duration (s)", format="%.1f")},
            )
    st.button("Refresh")

st.subheader("Retrain records")
records, bad = history.run_records(data.project_root())
if records:
    st.caption(
        "One record per retrain, whatever its outcome (`runs/history/`), newest first; a rejected run's "
        "validation report is on the Data quality page."
    )
    st.dataframe(
        pd.DataFrame(
            {
                "run": [r.run_id for r in records],
                "category": [r.category for r in records],
                "finished": [r.finished for r in records],
                "outcome": [OUTCOME_TEXT[r.outcome] for r in records],
                "reason": [r.reason or "" for r in records],
                "baseline": [r.baseline.description if r.baseline else "" for r in records],
                "failed checks": [", ".join((r.validation or {}).get("failed") or []) for r in records],
                "methods": [", ".join(r.metrics or {}) for r in records],
            }
        ).iloc[::-1],
        hide_index=True,
        width="stretch",
    )
else:
    st.info("No run records in `runs/history/` yet: the Prefect retrain flow writes one per run.")
if bad:
    st.caption(f"{bad} file(s) in runs/history/ could not be read and were skipped.")
