"""Shared fixtures: the fixture project, a clean Streamlit cache, and an AppTest helper."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the `dashboard` package lives beside src/, not inside it
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import make_fixture_artifacts  # noqa: E402

APP = ROOT / "dashboard" / "app.py"


@pytest.fixture(scope="session")
def fixture_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture project, written once; tests must not modify it (copy it first)."""
    return make_fixture_artifacts(tmp_path_factory.mktemp("project"))


@pytest.fixture(autouse=True)
def _fresh_streamlit_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def open_page(monkeypatch: pytest.MonkeyPatch):
    """``open_page(root, "pages/heatmaps.py")`` -> an AppTest that has run that page on ``root``."""
    from streamlit.testing.v1 import AppTest

    def _open(root: Path, page: str | None = None, **state: object) -> AppTest:
        monkeypatch.setenv("DIFFAD_ROOT", str(root))
        at = AppTest.from_file(str(APP), default_timeout=60)
        for key, value in state.items():
            at.session_state[key] = value
        at.run()
        if page is not None:
            at.switch_page(page).run()
        return at

    return _open


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    """Say loudly when the browser tests were skipped (a quiet "s" hid them before)."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "test_dashboard_browser" in r.nodeid]
    if skipped:
        terminalreporter.write_sep("!", f"{len(skipped)} BROWSER TESTS SKIPPED", red=True, bold=True)
        terminalreporter.write_line(
            "The dashboard was not tested in a real browser: install chromium and chromium-driver "
            "(apt-get install -y chromium chromium-driver). With CI=true these tests fail instead."
        )
