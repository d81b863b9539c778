"""The same code, data and parameters give the same bytes (issue 23): the tiny pipeline run twice, in
two fresh folders, records the same hash for every output in ``dvc.lock``. This is what makes a
fresh clone's ``make demo`` leave the committed ``dvc.lock`` (and the headline metrics in git)
unchanged; wall-clock values are kept out of every output for it (``reports/timing.json``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import dvc, make_tiny_project, project_env

pytestmark = pytest.mark.slow


def _outputs(project: Path) -> dict[str, dict]:
    """``{"stage: path": {md5, size, nfiles}}`` of every output in ``dvc.lock``."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    return {
        f"{stage}: {out['path']}": {k: out.get(k) for k in ("md5", "size", "nfiles")}
        for stage, entry in lock["stages"].items()
        for out in entry.get("outs", [])
    }


def test_two_fresh_runs_give_every_output_the_same_hash(tmp_path: Path) -> None:
    runs = []
    for name in ("first", "second"):
        project = make_tiny_project(tmp_path / name)
        dvc(project, "repro", env=project_env(project))
        runs.append(project)
    first, second = (_outputs(p) for p in runs)
    assert set(first) == set(second)
    differ = sorted(k for k in first if first[k] != second[k])
    assert not differ, f"outputs whose bytes differ between two runs: {differ}"
    assert (runs[0] / "dvc.lock").read_text() == (runs[1] / "dvc.lock").read_text()
    headline = sorted(p.name for p in (runs[0] / "metrics").glob("*.json"))
    assert headline and headline == sorted(p.name for p in (runs[1] / "metrics").glob("*.json"))
    assert "up to date" in dvc(runs[1], "status", env=project_env(runs[1])).stdout
