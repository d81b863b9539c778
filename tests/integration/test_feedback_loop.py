"""Closing the loop on the tiny real pipeline: production scores are logged and monitored, reviewed
false alarms become training data, and the retrained model scores them lower (issue 15)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from diffad.artifacts.layout import ProjectLayout
from diffad.config import load_params
from diffad.data.synthetic import make_image
from diffad.feedback.store import FeedbackStore, ReviewedPrediction
from diffad.inference.scores_log import read_scores_log
from diffad.monitoring.check import check_category
from tests.flows.conftest import prefect_server  # noqa: F401  (the fixture, Prefect in a temp home)
from tests.integration.conftest import copy_project, dvc

pytestmark = pytest.mark.slow
CATEGORY = "fabric"


def production_images(
    folder: Path, n: int, *, brighter: float = 0.0, new_defect: bool = False, first: int = 0
):
    """Demo-like images never seen by the pipeline (split "production" draws its own seeds);
    ``brighter``: added to every pixel (0-255); ``new_defect``: a dark bar, a kind the demo has not."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(first, first + n):
        image, _ = make_image(CATEGORY, "production", "good", index, seed=0)
        pixels = image.astype(np.float64) + brighter
        if new_defect:
            pixels[40:88, 60:70] = 15.0
        path = folder / f"cam_{index:03d}.png"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def predict(project: Path, inputs: Path, method: str, out: str, log: str = "data/monitoring") -> None:
    cmd = [
        sys.executable,
        "-m",
        "diffad.cli",
        "predict",
        str(inputs),
        "--method",
        method,
        "--out",
        out,
        "--threads",
        "1",
        "--scores-log",
        log,
    ]
    done = subprocess.run(cmd, cwd=project, text=True, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def project(reproduced_project: Path, tmp_path: Path) -> Path:
    return copy_project(reproduced_project, tmp_path / "loop")


def test_monitor_flags_shifted_production_scores_and_not_unshifted(project, prefect_server, monkeypatch):  # noqa: F811
    import flows.monitor as monitor_flow

    cfg = load_params(project / "params.yaml").monitoring
    production_images(project / "incoming/normal", 24)
    production_images(project / "incoming/shifted", 12, brighter=50.0, first=100)
    production_images(project / "incoming/shifted", 12, new_defect=True, first=200)
    predict(project, project / "incoming/normal", "padim", "pred_normal", "logs/normal")
    predict(project, project / "incoming/shifted", "padim", "pred_shifted", "logs/shifted")

    normal = check_category(project, CATEGORY, cfg, log_root=project / "logs/normal")
    shifted = check_category(project, CATEGORY, cfg, log_root=project / "logs/shifted")
    print("unshifted:", normal.drift.summary())
    print("shifted:  ", shifted.drift.summary())
    assert normal.drift.enough and not normal.drift.drifted and not normal.retrain
    assert shifted.drift.drifted and shifted.retrain and "score drift" in shifted.reasons[0]

    queued = []
    monkeypatch.setattr(
        monitor_flow, "run_deployment", lambda name, **kw: queued.append((name, kw)) or _Run()
    )
    live = ProjectLayout(project).monitoring.scores_log(CATEGORY)
    live.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(project / "logs/normal" / CATEGORY / "scores.jsonl", live)
    assert monitor_flow.monitor(project_dir=str(project))[CATEGORY]["retrain"] is False
    assert queued == []
    shutil.copy(project / "logs/shifted" / CATEGORY / "scores.jsonl", live)
    result = monitor_flow.monitor(project_dir=str(project))[CATEGORY]
    assert result["retrain"] is True and result["triggered"]
    [(name, kwargs)] = queued
    assert name == "retrain/on-demand" and kwargs["parameters"]["category"] == CATEGORY

    # The dashboard shows the same decision on the real artifacts, and queues the images to review.
    at = _open(monkeypatch, project, "pages/monitoring.py")
    assert any("DRIFT" in str(e.value) for e in at.error), [str(e.value) for e in at.error]
    at = _open(monkeypatch, project, "pages/review.py")
    queue = at.dataframe[0].value
    assert len(queue) == 24 and queue["distance to threshold"].is_monotonic_increasing


def _open(monkeypatch, root: Path, page: str):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.integration.conftest import ROOT

    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setenv("DIFFAD_ROOT", str(root))
    at = AppTest.from_file(str(ROOT / "dashboard/app.py"), default_timeout=120)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


class _Run:
    id = "queued-run"


def test_reviewed_false_alarms_are_learnt_by_the_next_dvc_repro(project, prefect_server, tmp_path):  # noqa: F811
    production_images(project / "incoming/bright", 8, brighter=80.0, first=300)
    predict(project, project / "incoming/bright", "padim", "pred_before")
    log = read_scores_log(ProjectLayout(project).monitoring.scores_log(CATEGORY))
    log = log[log["image"].str.contains("/incoming/bright/")]  # other tests' predict runs log too
    alarms = log[log["anomalous"]].head(3)
    assert len(alarms) == 3, log[["image", "norm_score"]]  # good images the model flags: false alarms

    store = FeedbackStore(ProjectLayout(project).feedback.root)
    for row in alarms.itertuples():  # what the Review page's Save does
        store.record(
            CATEGORY,
            reviewer="ana",
            verdict="good",
            image=Path(row.image),
            source_name=row.image,
            prediction=ReviewedPrediction(
                row.bundle_id, None, row.method, row.score, row.norm_score, row.threshold
            ),
        )
    cfg = dataclasses.replace(load_params(project / "params.yaml").monitoring, new_verdicts=3)
    check = check_category(project, CATEGORY, cfg)  # 8 images: too few for drift, verdicts enough
    assert check.retrain and check.new_verdicts == 3 and "3 new verdicts" in check.reasons[0]
    status = dvc(project, "status", "convert_dataset").stdout
    assert "data/feedback" in status  # the new verdicts make convert_dataset out of date
    dvc(project, "repro")

    lock = yaml.safe_load((project / "dvc.lock").read_text())
    deps = {d["path"]: d for d in lock["stages"]["convert_dataset"]["deps"]}
    assert deps["data/feedback"]["md5"].endswith(".dir") and deps["data/feedback"]["nfiles"] == 5
    info = json.loads((project / "data/prepared/info.json").read_text())
    assert info["feedback"]["joined"] == 3 and info["feedback"]["good_split"] == "train"

    reviewed = project / "incoming/reviewed"
    reviewed.mkdir()
    for row in alarms.itertuples():
        shutil.copy(row.image, reviewed / Path(row.image).name)
    predict(project, reviewed, "padim", "pred_after")
    logged = read_scores_log(ProjectLayout(project).monitoring.scores_log(CATEGORY))
    after = logged[logged["image"].str.contains("/incoming/reviewed/")]
    after = after.set_index(after["image"].map(lambda p: Path(p).name))
    before = alarms.set_index(alarms["image"].map(lambda p: Path(p).name))
    pairs = {name: (before.loc[name, "norm_score"], after.loc[name, "norm_score"]) for name in before.index}
    print("0-1000 scores before -> after:", pairs)
    assert (after.loc[before.index, "norm_score"].to_numpy() < before["norm_score"].to_numpy()).all()
    assert (
        after.loc[before.index, "bundle_id"].nunique() == 1
        and after["bundle_id"].iloc[0] != before["bundle_id"].iloc[0]
    )

    # The retrain flow on the same data (stages restored from the run-cache) reports what it did
    # with the verdicts: the same gate and promotion rule, and the reviewed false alarms' rate.
    from flows.retrain import retrain

    result = retrain(project_dir=str(project), work_dir=str(tmp_path / "work"), retries=0)
    assert result["accepted"]
    effect = json.loads(ProjectLayout(project).runs.feedback(result["run_id"]).read_text())
    print("retrain feedback summary:", {k: v for k, v in effect.items() if k != "images"})
    assert (effect["verdicts_used"], effect["reviewed_false_alarms"], effect["method"]) == (3, 3, "padim")
    assert effect["before"] == 1.0 and effect["after"] == 0.0
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        [artifact, *_] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"retrain-{CATEGORY}"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert "## Reviewers' feedback" in artifact.data and "100% before → 0% after" in artifact.data
