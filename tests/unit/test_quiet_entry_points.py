"""Every entry point turns the tools' usage analytics off itself (issue 23): run without the
variables the Makefile exports, `python -m flows.monitor` printed ~110 lines of Prefect telemetry
traceback. A user's own setting wins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from diffad.core import QUIET_ENV

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import os, sys
import {module}
print(repr({{k: os.environ.get(k) for k in {names!r}}}))
"""


def _bare_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in QUIET_ENV}
    return {**env, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), **extra}


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)


@pytest.mark.parametrize("module", ["diffad.cli", "stages.evaluate", "flows.monitor", "dashboard.data"])
def test_importing_an_entry_point_turns_analytics_off(module: str) -> None:
    code = PROBE.format(module=module, names=sorted(QUIET_ENV))
    done = subprocess.run(
        [sys.executable, "-c", code], env=_bare_env(), capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert eval(done.stdout.strip().splitlines()[-1]) == QUIET_ENV


def test_prefect_sees_its_server_analytics_off_and_a_users_choice_wins() -> None:
    code = (
        "import flows.monitor\nfrom prefect.settings import get_current_settings\n"
        "print(get_current_settings().server.analytics_enabled)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=_bare_env(), capture_output=True, text=True, cwd=ROOT
    )
    assert done.stdout.strip().splitlines()[-1] == "False", done.stderr[-2000:]
    env = _bare_env(PREFECT_SERVER_ANALYTICS_ENABLED="true")
    done = _python(code, env)
    assert done.stdout.strip().splitlines()[-1] == "True", done.stderr[-2000:]
