"""A killed `dvc repro` leaves no stage behind (issue 21, case 3).

The stage is killed 0.5 s after it starts, while it is still importing torch: the moment the
old ``exit_with_parent()`` (after the imports) missed, leaving an orphan that later overwrote the
outputs DVC had restored meanwhile.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DVC = Path(sys.executable).with_name("dvc")


def _stage_pids(marker: str) -> list[int]:
    """Processes running the stage script of the project ``marker`` names."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = b" ".join(cmdline).decode(errors="replace")
        if "stages/fit.py" in text and marker in text and text.startswith(sys.executable):
            pids.append(int(entry.name))
    return pids


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not DVC.exists() or not sys.platform.startswith("linux"), reason="needs dvc, Linux")
@pytest.mark.parametrize("shell", ["/bin/bash", "/bin/sh"])  # bash execs the stage; dash forks it
def test_killing_dvc_repro_half_a_second_into_a_stage_leaves_no_orphan(tmp_path, shell):
    if not Path(shell).exists():
        pytest.skip(f"no {shell}")
    project = tmp_path / "project"
    project.mkdir()
    marker = str(project / "out")
    (project / "params.yaml").write_text("data:\n  category: tiny\n")
    (project / "dvc.yaml").write_text(
        "stages:\n  fit_patchcore:\n"
        f"    cmd: {sys.executable} {ROOT}/stages/fit.py --params params.yaml --method patchcore"
        f" --inputs data --out {marker} --history rep.csv\n"
        "    outs: [out]\n"
    )
    env = {
        **os.environ,
        "SHELL": shell,
        "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
        "DVC_NO_ANALYTICS": "1",
        "OMP_NUM_THREADS": "1",
    }
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=project, env=env, check=True)
    dvc = subprocess.Popen(
        [DVC, "repro"], cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    stage: list[int] = []
    try:
        for _ in range(600):
            stage = _stage_pids(marker)
            if stage or dvc.poll() is not None:
                break
            time.sleep(0.05)
        assert stage, "the stage never started"
        time.sleep(0.5)
        dvc.send_signal(signal.SIGKILL)  # kill -9 of `dvc repro`, the stage still importing
        dvc.wait()
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and any(_alive(p) for p in stage):
            time.sleep(0.05)
        assert not any(_alive(p) for p in stage), "the stage outlived dvc repro"
    finally:
        for pid in stage:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if dvc.poll() is None:
            dvc.kill()
            dvc.wait()
        shutil.rmtree(project, ignore_errors=True)
