"""`diffad predict --category` on a host that ran nothing serves what another host promoted.

The producer is the real one: host A runs the retrain flow of the tiny pipeline with a model
registry and a DVC remote (its publish pushes the outputs, then tags the version in the registry);
host B is a `git clone` with no DVC cache and no outputs, as a fresh inspection PC would be."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.flows.conftest import prefect_server  # noqa: F401  (the fixture, and Prefect kept in a temp home)
from tests.integration.conftest import ROOT, copy_project, dvc

pytestmark = pytest.mark.slow

CATEGORY = "fabric"  # the tiny project's data.category


def _run(cmd: list[str], cwd: Path) -> str:
    done = subprocess.run(cmd, cwd=cwd, text=True, capture_output=True, timeout=900, env=os.environ)
    assert done.returncode == 0, f"{' '.join(cmd)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _predict(host: Path, images: list[str], *source: str) -> tuple[str, pd.DataFrame]:
    """What `diffad predict` printed, and its predictions.csv."""
    out = host / "predictions-across-hosts"  # the shared project may hold other tests' predictions/
    cmd = [sys.executable, "-m", "diffad.cli", "predict", *images, *source, "--method", "padim",
           "--out", str(out), "--threads", "1"]  # fmt: skip
    printed = _run(cmd, host)
    return printed, pd.read_csv(out / "predictions.csv")


def test_a_host_that_ran_nothing_predicts_with_the_promoted_bundle(
    reproduced_project: Path,
    tmp_path: Path,
    prefect_server: str,  # noqa: F811
) -> None:
    host_a = copy_project(reproduced_project, tmp_path / "host-a")
    registry = tmp_path / "registry.git"
    _run(["git", "init", "-q", "--bare", "--initial-branch=main", str(registry)], tmp_path)
    dvc(host_a, "remote", "add", "-d", "shared", str(tmp_path / "dvc-remote"))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    _run([*git, "commit", "-qam", "the shared remote"], host_a)

    _run([sys.executable, "-m", "flows.retrain", "--project-dir", str(host_a), "--category", CATEGORY,
          "--registry", str(registry)], ROOT)  # fmt: skip

    host_b = tmp_path / "host-b"
    _run(["git", "clone", "-q", str(host_a), str(host_b)], tmp_path)
    assert not (host_b / "models").exists() and not (host_b / ".dvc" / "cache").exists()
    scores = pd.read_csv(reproduced_project / "reports/scores.csv")
    images = [str(reproduced_project / "data/prepared" / p) for p in scores["path"].iloc[[0, -1]]]

    printed, served = _predict(host_b, images, "--category", CATEGORY, "--registry", str(registry))
    assert f"serving {CATEGORY}@v1.0.0" in printed
    _, promoted = _predict(host_a, images, "--bundle", f"runs/{CATEGORY}/accepted/models/bundle")
    assert served["score"].tolist() == promoted["score"].tolist()
    assert served["anomalous"].tolist() == promoted["anomalous"].tolist()
    fetched = host_b / "models" / "registry" / f"{CATEGORY}@v1.0.0" / "bundle"
    assert sorted(p.name for p in fetched.iterdir()) == sorted(
        p.name for p in (host_a / f"runs/{CATEGORY}/accepted/models/bundle").iterdir()
    )
