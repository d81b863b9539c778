"""diffad review dashboard: ``diffad dashboard`` (or ``streamlit run dashboard/app.py``) in the project root.

Reads the artifacts under ``$DIFFAD_ROOT`` (default: the working directory); see dashboard/data.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# Streamlit puts this file's folder on sys.path; the pages import the `dashboard` package beside it.
CODE_ROOT = str(Path(__file__).resolve().parents[1])
if CODE_ROOT not in sys.path:
    sys.path.insert(0, CODE_ROOT)

from dashboard import ui  # noqa: E402

st.set_page_config(page_title="diffad review", page_icon=":material/search:", layout="wide")
PAGES = [
    st.Page("pages/overview.py", title="Overview", icon=":material/table_chart:", default=True),
    st.Page("pages/curves.py", title="Curves", icon=":material/show_chart:", url_path="curves"),
    st.Page("pages/heatmaps.py", title="Heatmaps", icon=":material/grid_view:", url_path="heatmaps"),
    st.Page(
        "pages/operating_point.py",
        title="Operating point",
        icon=":material/tune:",
        url_path="operating-point",
    ),
    st.Page("pages/inspect_image.py", title="Inspect an image", icon=":material/upload:", url_path="inspect"),
    st.Page("pages/review.py", title="Review queue", icon=":material/rate_review:", url_path="review"),
    st.Page("pages/monitoring.py", title="Monitoring", icon=":material/monitoring:", url_path="monitoring"),
    st.Page(
        "pages/data_quality.py", title="Data quality", icon=":material/fact_check:", url_path="data-quality"
    ),
    st.Page("pages/runs.py", title="Runs", icon=":material/history:", url_path="runs"),
]
page = st.navigation(PAGES)
ui.sidebar()
page.run()
