"""A failed retrain says why, and a staging workspace runs its own code (issue 21, case 10).

Real ``dvc repro`` runs of tiny projects through :func:`flows.dvc_cli.run_dvc`, the call the
retrain flow makes: the exception's first line is what the run record keeps as its reason.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from flows.dvc_cli import StageFailed, run_dvc

ROOT = Path(__file__).resolve().parents[2]
DVC = Path(sys.executable).with_name("dvc")
pytestmark = pytest.mark.skipif(not DVC.exists(), reason="needs dvc")


def _project(tmp_path: Path, cmd: str) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "params.yaml").write_text("data:\n  category: tiny\n")
    (project / "dvc.yaml").write_text(f"stages:\n  stage:\n    cmd: {cmd}\n    outs: [out]\n")
    run_dvc(["init", "--no-scm", "-q"], project)
    return project


def test_a_failed_stage_s_cause_is_on_the_first_line_of_the_failure(tmp_path):
    """A real stage failing on bad input: its one-line error, not "stage exit 2):" and 124 lines."""
    args = "--params params.yaml --method msma_gmm --inputs nowhere --out out --history rep.csv"
    cmd = f"{sys.executable} {ROOT}/stages/fit.py {args}"
    project = _project(tmp_path, cmd)
    with pytest.raises(StageFailed) as info:
        run_dvc(["repro"], project)
    first = str(info.value).splitlines()[0]
    assert "stage exit 2): error: " in first and "nowhere" in first


def test_a_traceback_s_last_line_is_the_cause(tmp_path):
    project = _project(tmp_path, f"{sys.executable} fail.py")
    (project / "fail.py").write_text("raise ValueError('the real cause')\n")
    with pytest.raises(StageFailed) as info:
        run_dvc(["repro"], project)
    assert str(info.value).splitlines()[0].endswith("ValueError: the real cause")


def test_a_workspace_s_stages_import_its_own_snapshot_of_the_code(tmp_path, monkeypatch):
    """The flow's own checkout is on PYTHONPATH (or installed editable): the workspace's copy wins."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    project = _project(tmp_path, f"{sys.executable} where.py")
    (project / "where.py").write_text(
        "import pathlib, diffad\npathlib.Path('out').write_text(diffad.__file__)\n"
    )
    shutil.copytree(ROOT / "src" / "diffad", project / "src" / "diffad")
    run_dvc(["repro"], project)
    assert Path((project / "out").read_text()).resolve().is_relative_to(project.resolve())
