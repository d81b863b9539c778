"""A temporary clone of the project (tracked and new files, no outputs) with tiny parameters."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

# Small enough for a 2-core CI machine; every stage still does its real work.
TINY = {
    "data": {"resolution": 64},  # the working resolution; the denoiser reads 32 px (train_denoiser)
    "runtime": {"threads": 1},
    "convert_dataset": {
        "demo_train_good": 24,
        "demo_test_good": 6,
        "demo_test_per_defect": 3,
        "demo_test_unknown": 2,
        "min_train_images": 8,
        "min_test_images": 2,
        "min_calibration_images": 8,  # 24 train/good -> 16 train, 8 calibration
    },
    "train_denoiser": {
        "resolution": 32,
        "steps": 30,
        "batch_size": 8,
        "checkpoint_every": 10,
        "lr_warmup_steps": 5,
        "sample_count": 4,
        "sample_steps": 4,
    },
    "score_norms": {"num_sigmas": 6, "batch_size": 16},
    "backbone": {"input_size": 64, "border_pad": 8},
    "msma_gmm": {"n_components": 2},
    "msma_flow": {"epochs": 2, "batch_size": 8, "positions_per_step": 32, "num_flows": 1, "hidden": 32},
    "msma_features": {"steps": 30, "hidden": 32},
    "ddim": {"steps": 3},
    "evaluate": {"max_overlays": 6, "target_false_alarm_rate": 0.125},  # 1 of 8
}


def project_env(project: Path) -> dict[str, str]:
    """Environment in which ``python`` imports the project copy's own code (``src/``, ``stages/``,
    ``dashboard/``), not the installed checkout's: for tests that change the copy's code."""
    return {"PYTHONPATH": os.pathsep.join([str(project / "src"), str(project)])}


def dvc(
    project: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        **(env or {}),
        "DVC_NO_ANALYTICS": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=project,
        env=env,
        text=True,
        capture_output=True,
        timeout=1800,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        base[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return base


def make_tiny_project(tmp_path: Path) -> Path:
    """Copy the project's tracked and new files into ``tmp_path/project`` with :data:`TINY` params."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        text=True,
        capture_output=True,
        check=True,
    ).stdout.split()
    project = tmp_path / "project"
    for name in files:
        if (ROOT / name).is_file():
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, project / name)
    params = merge(yaml.safe_load((project / "params.yaml").read_text()), TINY)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "tiny"], cwd=project, check=True)
    return project


@pytest.fixture
def tiny_project(tmp_path: Path) -> Path:
    return make_tiny_project(tmp_path)


@pytest.fixture(scope="session")
def reproduced_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project after a full `dvc repro`, shared by every test of the session: tests read it,
    or copy it (:func:`copy_project`) before changing anything."""
    project = make_tiny_project(tmp_path_factory.mktemp("pipeline"))
    dvc(project, "repro")
    return project


def copy_project(project: Path, dest: Path) -> Path:
    """A full copy of a reproduced project (git, DVC cache, outputs) that a test may change."""
    shutil.copytree(project, dest, symlinks=True)
    return dest
