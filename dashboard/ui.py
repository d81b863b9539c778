"""What every page shares: the category picker and the "run `dvc repro` first" message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import pandas as pd
import streamlit as st

from dashboard.data import Category, MissingArtifact, clear_caches, find_categories, project_root
from diffad.artifacts.layout import METRICS_FILE, MONITORING, MonitoringDir
from diffad.core.errors import DiffadError
from diffad.inference.scores_log import read_scores_log

T = TypeVar("T")
CATEGORY_KEY = "category"


def sidebar() -> None:
    """Category picker (when there are several), the project folder, a reload button."""
    root = project_root()
    names = [c.name for c in find_categories(root)]
    if len(names) > 1:
        st.sidebar.selectbox("Category", names, key=CATEGORY_KEY)
    elif names:
        st.sidebar.caption(f"Category: **{names[0]}**")
    st.sidebar.caption(f"Project: `{root}`")
    if st.sidebar.button("Reload artifacts", help="Forget cached files (after a new `dvc repro`)"):
        clear_caches()


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def warn_missing(exc: MissingArtifact) -> None:
    """Say which artifact is missing or unreadable and how to make it."""
    root = project_root()
    st.warning(
        f"**`{_shown(exc.path, root)}`: {exc.reason}** (project folder `{root}`).\n\n"
        "Run `dvc repro` first (from the project root), or point `DIFFAD_ROOT` at the project folder.",
        icon=":material/info:",
    )


def stop_missing(exc: MissingArtifact) -> NoReturn:
    """:func:`warn_missing`, then end the page (no traceback)."""
    warn_missing(exc)
    st.stop()


def need(load: Callable[..., T], *args: object) -> T:
    """``load(*args)``, or the missing-artifact message when it raises :class:`MissingArtifact`."""
    try:
        return load(*args)
    except MissingArtifact as exc:
        stop_missing(exc)


def category(needs: str = METRICS_FILE) -> Category:
    """The category picked in the sidebar (the first found by default); without any, ends the page
    naming ``needs``, the artifact the page shows."""
    root = project_root()
    cats = find_categories(root)
    if not cats:
        stop_missing(MissingArtifact(root / needs))
    chosen = st.session_state.get(CATEGORY_KEY)
    return next((c for c in cats if c.name == chosen), cats[0])


def production_scores() -> tuple[Category, Path, pd.DataFrame]:
    """The category picker over scores logs, then its log (path, rows); stops the page when the
    log is unreadable or empty (Review queue and Monitoring)."""
    cat = category(str(MonitoringDir(Path(MONITORING)).scores_log("<category>")))
    log_path = MonitoringDir(project_root() / MONITORING).scores_log(cat.name)
    try:
        log = read_scores_log(log_path)
    except DiffadError as exc:
        st.error(str(exc))
        st.stop()
    if log.empty:
        stop_missing(
            MissingArtifact(log_path, "no production scores yet; `diffad predict <images>` appends them")
        )
    return cat, log_path, log
