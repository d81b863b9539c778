"""The retrain flows against a real Prefect server, on the tiny DVC project of conftest.py."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

FAST = {"retries": 1, "retry_delay_s": 0.2}  # a transient failure is retried once, at once


def _task_runs(flow_run_id) -> dict[str, object]:
    """{task run name: TaskRun} of one flow run, read back from the server."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {run.name: run for run in runs}


def _snapshot(project: Path) -> dict[str, str]:
    """sha256 of every file of the accepted state: project outputs, dvc.lock and runs/<cat>/accepted."""
    roots = [
        project / "reports",
        project / "models",
        project / "dvc.lock",
        project / "runs" / "alpha" / "accepted",
    ]
    files = [
        p for root in roots for p in ([root] if root.is_file() else sorted(root.rglob("*"))) if p.is_file()
    ]
    return {str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _history(project: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((project / "runs" / "history").glob("*.json"))]


def _retrain(project: Path, tmp_path: Path, **kwargs):
    from flows.retrain import retrain

    return retrain(
        project_dir=str(project), work_dir=str(tmp_path / "work"), **{**FAST, **kwargs}, return_state=True
    )


@pytest.fixture(scope="module")
def accepted_template(prefect_server, tiny_template, tmp_path_factory) -> Path:
    """The tiny project after one accepted retrain (copied by the tests that need a history)."""
    base = tmp_path_factory.mktemp("accepted")
    project = base / "project"
    shutil.copytree(tiny_template, project, symlinks=True)
    state = _retrain(project, base)
    assert state.is_completed(), state
    return project


@pytest.fixture
def accepted_project(accepted_template, tmp_path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(accepted_template, project, symlinks=True)
    return project


def test_retrain_runs_dvc_stages_in_order_promotes_and_pushes(prefect_server, tiny_project, tmp_path):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    state = _retrain(tiny_project, tmp_path, remote="shared")

    assert state.is_completed(), state
    runs = _task_runs(state.state_details.flow_run_id)
    expected = [
        "prepare-workspace",
        "dvc-fetch-shared",
        "stage-graph",
        "validate-convert_dataset",
        "repro-train",
        "repro-evaluate",
        "judge-metrics",
        "dvc-push-shared",
        "promote",
        "record-run",
    ]
    assert sorted(runs) == sorted(expected)
    assert all(runs[name].state.is_completed() for name in expected)
    starts = [runs[name].start_time for name in expected]
    assert starts == sorted(starts)  # gate first, then the stages in DVC's order

    accepted = tiny_project / "runs" / "alpha" / "accepted"
    metrics = json.loads((accepted / "metrics.json").read_text())
    assert metrics["tiny"]["image_auroc"] == 0.9
    assert (accepted / "reports" / "heatmaps" / "defect" / "000.png").exists()
    assert (accepted / "models" / "bundle" / "model.json").exists()
    # the run used the project's own params, so the project itself shows the accepted run
    assert json.loads((tiny_project / "reports" / "metrics.json").read_text()) == metrics
    assert (tiny_project / "dvc.lock").read_bytes() == (accepted / "dvc.lock").read_bytes()
    status = subprocess.run(
        [sys.executable, "-m", "dvc", "status"], cwd=tiny_project, capture_output=True, text=True
    )
    assert "up to date" in status.stdout, status.stdout + status.stderr
    # outputs pushed: the model's content is in the remote under its md5 from dvc.lock
    lock = yaml.safe_load((accepted / "dvc.lock").read_text())
    md5 = lock["stages"]["train"]["outs"][0]["md5"]
    assert (tmp_path / "remote" / "files" / "md5" / md5[:2] / md5[2:]).exists()
    assert any((tmp_path / "remote" / "runs").rglob("*"))  # and the run-cache
    assert list((tmp_path / "work").iterdir()) == []  # staging workspace removed

    [record] = _history(tiny_project)
    assert record["accepted"] is True and record["state"] == "Completed" and record["category"] == "alpha"
    assert record["outcome"] == "accepted" and record["baseline"]["source"] == "none"
    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["retrain-alpha"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
            )
        )
    assert "| tiny | 0.9000" in artifact.data and "Data validation passed: 2 of 2 checks met" in artifact.data
    assert "| `value_range`:" in artifact.data and "| `row_count`:" in artifact.data


def test_transient_failure_is_retried_and_the_run_completes(
    prefect_server, tiny_project, tmp_path, monkeypatch
):
    marker = tmp_path / "failed-once"
    monkeypatch.setenv("TINY_FAIL_ONCE", str(marker))

    state = _retrain(tiny_project, tmp_path)

    assert state.is_completed(), state
    assert marker.exists()  # the failure really happened
    runs = _task_runs(state.state_details.flow_run_id)
    assert runs["repro-train"].run_count == 2 and runs["repro-train"].state.is_completed()
    assert runs["repro-evaluate"].run_count == 1


def test_bad_data_fails_validation_and_the_accepted_state_stays_byte_identical(
    prefect_server, accepted_project, tmp_path
):
    before = _snapshot(accepted_project)
    assert "runs/alpha/accepted/models/model.json" in before and "models/model.json" in before
    (accepted_project / "data" / "raw" / "part2.csv").write_text("value\nbanana\n")

    state = _retrain(accepted_project, tmp_path)

    assert state.is_failed()
    runs = _task_runs(state.state_details.flow_run_id)
    assert runs["validate-convert_dataset"].state.is_failed()
    assert runs["validate-convert_dataset"].run_count == 1  # a failed validation is never retried
    assert not any(name.startswith("repro-") or name == "promote" for name in runs)
    assert _snapshot(accepted_project) == before
    record = _history(accepted_project)[-1]
    assert record["state"] == "Failed" and record["accepted"] is False and record["metrics"] is None
    assert record["outcome"] == "rejected" and "ValidationGateFailed" in record["reason"]
    # the record names the failing check and the offending file, and keeps the whole report
    assert "value_range: part2.csv:2" in record["reason"]
    [check] = [c for c in record["validation"]["checks"] if not c["success"]]
    assert check["name"] == "value_range" and check["offending_files"] == ["part2.csv:2"]
    kept = json.loads((accepted_project / record["validation_report"]).read_text())
    assert kept["success"] is False and kept["checks"][0]["offending"][0]["path"] == "part2.csv:2"
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["retrain-alpha"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
            )
        )
    failing = next(line for line in artifact.data.splitlines() if "`value_range`" in line)
    assert "**FAIL**" in failing and "`part2.csv:2`" in failing


def test_metrics_below_tolerance_fail_the_run_and_are_not_promoted(
    prefect_server, accepted_project, tmp_path
):
    before = _snapshot(accepted_project)

    state = _retrain(accepted_project, tmp_path, overrides=["train.quality=0.8"], tolerance=0.05)

    assert state.is_failed()
    runs = _task_runs(state.state_details.flow_run_id)
    assert runs["judge-metrics"].state.is_completed() and "promote" not in runs
    assert _snapshot(accepted_project) == before
    record = _history(accepted_project)[-1]
    assert record["accepted"] is False and record["state"] == "Failed" and record["outcome"] == "not_promoted"
    assert record["baseline"]["source"] == "accepted"
    assert record["deltas"]["tiny"]["image_auroc"] == pytest.approx(-0.1)
    assert record["metrics"]["tiny"]["image_auroc"] == 0.8


def test_first_retrain_worse_than_the_served_model_is_not_accepted(prefect_server, tiny_project, tmp_path):
    """No accepted run yet, but the project serves reports of its category (a plain `dvc repro`)."""
    from flows.dvc_cli import run_dvc

    run_dvc(["repro"], tiny_project)
    before = _snapshot(tiny_project)

    state = _retrain(tiny_project, tmp_path, overrides=["train.quality=0.5"])

    assert state.is_failed()
    assert _snapshot(tiny_project) == before
    assert not (tiny_project / "runs" / "alpha" / "accepted").exists()
    record = _history(tiny_project)[-1]
    assert record["outcome"] == "not_promoted" and record["baseline"]["source"] == "served"
    assert "served reports" in record["rule"] and record["regressions"][0].startswith("tiny.image_auroc")


def test_retrain_all_runs_every_category_with_its_own_parameters(prefect_server, tiny_project, tmp_path):
    from flows.retrain import CategorySpec, retrain_all

    (tiny_project / "data" / "raw_beta" / "part1.csv").write_text("value\n0.9\n1.0\n")
    categories = [
        CategorySpec(name="alpha"),
        CategorySpec(name="beta", path="data/raw_beta", overrides=["train.quality=0.7"]),
    ]
    state = retrain_all(
        categories=categories,
        project_dir=str(tiny_project),
        options={**FAST, "work_dir": str(tmp_path / "work")},
        return_state=True,
    )

    assert state.is_completed(), state
    assert state.result() == {"alpha": "Completed", "beta": "Completed"}
    beta = tiny_project / "runs" / "beta" / "accepted"
    assert yaml.safe_load((beta / "params.yaml").read_text())["data"]["path"] == "data/raw_beta"
    assert json.loads((beta / "metrics.json").read_text())["tiny"]["image_auroc"] == 0.7
    assert json.loads((beta / "metrics.json").read_text())["tiny"]["pixel_auroc"] == pytest.approx(0.975)
    # only alpha (the project's own params) updated the project workspace
    assert json.loads((tiny_project / "reports" / "metrics.json").read_text())["tiny"]["image_auroc"] == 0.9
    deps = yaml.safe_load((tiny_project / "dvc.lock").read_text())["stages"]["convert_dataset"]["deps"]
    assert {dep["path"] for dep in deps} == {"data/raw", "stages/convert.py"}


def test_data_watch_retrains_only_when_the_raw_data_changed(prefect_server, accepted_project, tmp_path):
    from flows.data_watch import data_watch

    options = {**FAST, "work_dir": str(tmp_path / "work")}
    assert data_watch(project_dir=str(accepted_project), options=options) == {"alpha": "unchanged"}
    assert len(_history(accepted_project)) == 1

    (accepted_project / "data" / "raw" / "part2.csv").write_text("value\n0.5\n")
    assert data_watch(project_dir=str(accepted_project), options=options) == {"alpha": "Completed"}
    history = _history(accepted_project)
    assert len(history) == 2 and history[-1]["accepted"] is True
    assert data_watch(project_dir=str(accepted_project), options=options) == {"alpha": "unchanged"}
