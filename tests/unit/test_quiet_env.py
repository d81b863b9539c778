"""Every entry point turns analytics off by itself: a Prefect worker, a server host or a cron job
starts it without the user's shell, so the variables cannot be left to the caller."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from diffad.core.quiet import QUIET

ROOT = Path(__file__).resolve().parents[2]

# Each snippet starts one entry point the way its users do and prints the environment it left.
ENTRY_POINTS = {
    # `python -m flows.retrain` / `.serve` / `.monitor` and a worker's flow run all import the package
    "flows.retrain": "import flows.retrain",
    "flows.monitor": "import flows.monitor",
    "flows.serve": "import flows.serve",
    "diffad": (
        "from diffad import cli\ntry:\n    cli.main(['predict', '--help'])\nexcept SystemExit:\n    pass\n"
    ),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_entry_point_sets_analytics_off(entry):
    env = {k: v for k, v in os.environ.items() if k not in QUIET}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    names = sorted(QUIET)
    report = f"sys.__stdout__.write('\\nENV=' + json.dumps({{k: os.environ.get(k) for k in {names!r}}}))"
    code = ENTRY_POINTS[entry] + "\nimport json, os, sys\n" + report
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.rsplit("ENV=", 1)[1])
    assert seen == QUIET


def test_a_users_own_value_is_kept():
    from diffad.core.quiet import quiet_environment

    env = {"DO_NOT_TRACK": "0"}
    quiet_environment(env)
    assert env["DO_NOT_TRACK"] == "0" and env["DVC_NO_ANALYTICS"] == "1"
