"""Acceptance rule, promotion of an accepted run and the run records (no Prefect server needed)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import yaml

from diffad.artifacts.layout import ProjectLayout
from diffad.artifacts.records import ReportSummary, write_metrics, write_summary
from diffad.artifacts.runs import RunRecord, read_accepted, read_run_records, write_run_record
from diffad.core.errors import ArtifactError, ConfigError
from flows import promotion
from flows.promotion import compare_metrics

ACCEPTED = {"msma": {"image_auroc": 0.90, "pixel_auroc": 0.80, "aupro": None, "ms_per_image": 5.0}}


def test_a_drop_within_tolerance_is_accepted_with_its_deltas():
    new = {"msma": {"image_auroc": 0.885, "pixel_auroc": 0.83, "aupro": 0.4, "ms_per_image": 7.0}}
    decision = compare_metrics(new, ACCEPTED, tolerance=0.02)
    assert decision.accepted
    assert decision.regressions == []
    assert decision.deltas["msma"]["image_auroc"] == pytest.approx(-0.015)
    assert decision.deltas["msma"]["pixel_auroc"] == pytest.approx(0.03)
    assert decision.deltas["msma"]["ms_per_image"] == pytest.approx(2.0)  # reported, never judged
    assert "aupro" not in decision.deltas["msma"]  # nothing accepted to compare with


def test_a_drop_beyond_tolerance_is_rejected_naming_the_metric():
    new = {"msma": {"image_auroc": 0.87, "pixel_auroc": 0.80, "aupro": None}}
    decision = compare_metrics(new, ACCEPTED, tolerance=0.02)
    assert not decision.accepted
    assert len(decision.regressions) == 1 and decision.regressions[0].startswith("msma.image_auroc")


@pytest.mark.parametrize("value", [None, float("nan"), "n/a"])
def test_a_metric_that_disappears_counts_as_a_regression(value):
    new = {"msma": {"image_auroc": value, "pixel_auroc": 0.8}}
    decision = compare_metrics(new, ACCEPTED, tolerance=0.5)
    assert not decision.accepted
    assert "msma.image_auroc: missing" in decision.regressions[0]


def test_a_missing_method_is_a_regression_and_a_new_method_is_not():
    decision = compare_metrics({"padim": {"image_auroc": 0.99}}, ACCEPTED, tolerance=0.1)
    assert not decision.accepted
    assert {r.split(":")[0] for r in decision.regressions} == {"msma.image_auroc", "msma.pixel_auroc"}


def test_only_the_chosen_keys_are_judged():
    new = {"msma": {"image_auroc": 0.5, "pixel_auroc": 0.8}}
    assert compare_metrics(new, ACCEPTED, tolerance=0.0, keys=["pixel_auroc"]).accepted


def test_first_run_is_accepted_and_an_empty_run_is_not():
    assert compare_metrics({"msma": {"image_auroc": 0.1}}, None, tolerance=0.0).accepted
    assert not compare_metrics({}, ACCEPTED, tolerance=1.0).accepted
    with pytest.raises(ConfigError, match="tolerance"):
        compare_metrics(ACCEPTED, ACCEPTED, tolerance=-0.1)


@pytest.mark.parametrize("name", ["", "a/b", ".hidden", "..", "c\\d"])
def test_unusable_category_names_are_refused(tmp_path, name):
    with pytest.raises(ConfigError, match="category"):
        promotion.baseline_for(tmp_path, name)


def test_run_ids_sort_by_time_and_name_the_category():
    early = promotion.new_run_id("fabric", "1a2b3c4d-0000", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    late = promotion.new_run_id("fabric", "00000000-0000", datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC))
    assert early == "20260102T030405Z-fabric-1a2b3c4d"
    assert sorted([late, early]) == [early, late]


def _workspace(tmp_path, model_bytes: bytes):
    """A fake finished staging workspace whose dvc.lock lists three outputs."""
    ws = tmp_path / "ws"
    (ws / "models").mkdir(parents=True)
    (ws / "models" / "model.bin").write_bytes(model_bytes)
    (ws / "reports" / "heatmaps").mkdir(parents=True)
    (ws / "reports" / "heatmaps" / "a.png").write_bytes(b"png")
    (ws / "reports" / "metrics.json").write_text(json.dumps(ACCEPTED))
    (ws / "data" / "prepared").mkdir(parents=True)
    (ws / "data" / "prepared" / "x.png").write_bytes(b"big")
    lock = {
        "schema": "2.0",
        "stages": {
            "train": {"outs": [{"path": "models/model.bin"}, {"path": "data/prepared"}]},
            "evaluate": {"outs": [{"path": "reports/heatmaps"}, {"path": "reports/metrics.json"}]},
        },
    }
    (ws / "dvc.lock").write_text(yaml.safe_dump(lock))
    (ws / "params.yaml").write_text("data:\n  category: fabric\n")
    return ws


def test_publish_replaces_the_accepted_folder_with_only_the_published_outputs(tmp_path):
    project = tmp_path / "project"
    stale = ProjectLayout(project).runs.accepted("fabric").root / "models" / "old.bin"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    ws = _workspace(tmp_path, b"weights-v2")
    target, published = promotion.publish_accepted(
        project, "fabric", ws, "reports/metrics.json", ["reports", "models"], {"run_id": "r2"}
    )
    assert sorted(published) == ["models/model.bin", "reports/heatmaps", "reports/metrics.json"]
    assert (target / "models" / "model.bin").read_bytes() == b"weights-v2"
    assert (target / "reports" / "heatmaps" / "a.png").exists()
    assert not (target / "data").exists()  # not published: it stays in the DVC cache
    assert not stale.exists()  # the previous accepted run is replaced as a whole
    assert json.loads((target / "metrics.json").read_text()) == ACCEPTED
    assert (target / "dvc.lock").read_text() == (ws / "dvc.lock").read_text()
    assert promotion.accepted_metrics(project, "fabric") == ACCEPTED
    assert read_accepted(ProjectLayout(project).runs, "fabric").run_id == "r2"
    assert [p.name for p in target.parent.iterdir()] == ["accepted"]  # no temporary folders left


def test_update_project_copies_outputs_then_the_lock(tmp_path):
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "models" / "model.bin").write_bytes(b"weights-v1")
    ws = _workspace(tmp_path, b"weights-v2")
    replaced = promotion.update_project(project, ws)
    assert "models/model.bin" in replaced
    assert (project / "models" / "model.bin").read_bytes() == b"weights-v2"
    assert (project / "data" / "prepared" / "x.png").read_bytes() == b"big"
    assert (project / "dvc.lock").read_text() == (ws / "dvc.lock").read_text()


def test_run_record_round_trips_and_updates_last_run(tmp_path):
    decision = compare_metrics({"msma": {"image_auroc": 0.5}}, ACCEPTED, tolerance=0.01)
    record = RunRecord(
        run_id="r9",
        category="fabric",
        outcome="not_promoted",
        state="Failed",
        metrics={"msma": {"image_auroc": 0.5}},
        baseline=decision.baseline,
        rule=decision.rule,
        deltas=decision.deltas,
        regressions=decision.regressions,
        reason="metrics fell",
        data_hash="abc",
    )
    runs = ProjectLayout(tmp_path).runs
    path = write_run_record(runs, record)
    saved = json.loads(path.read_text())
    assert path == tmp_path / "runs" / "history" / "r9.json"
    assert saved["accepted"] is False and saved["outcome"] == "not_promoted"
    assert saved["deltas"]["msma"]["image_auroc"] == pytest.approx(-0.4)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", saved["finished"])
    [back], bad = read_run_records(runs)
    assert back == record and bad == []
    last = json.loads((tmp_path / "runs" / "fabric" / "last_run.json").read_text())
    assert last["run_id"] == "r9" and last["outcome"] == "not_promoted" and last["data_hash"] == "abc"


def test_first_run_is_judged_against_the_served_reports_of_its_category(tmp_path):
    """No accepted run yet: the baseline is what the project's workspace serves for the category."""
    (tmp_path / "params.yaml").write_text("data:\n  category: fabric\n")
    reports = ProjectLayout(tmp_path).reports
    write_metrics(reports.metrics, ACCEPTED)
    baseline = promotion.baseline_for(tmp_path, "fabric")
    assert baseline.source == "served" and baseline.metrics["msma"]["image_auroc"] == 0.9
    worse = compare_metrics({"msma": {"image_auroc": 0.5, "pixel_auroc": 0.8}}, baseline, tolerance=0.02)
    assert not worse.accepted and "served reports" in worse.rule
    assert promotion.baseline_for(tmp_path, "washer").source == "none"  # served reports are fabric's
    write_summary(reports, ReportSummary("washer", True, ["msma"], 4, 0))  # the summary decides
    assert promotion.baseline_for(tmp_path, "washer").source == "served"


def test_unreadable_metrics_raise_artifact_error(tmp_path):
    bad = tmp_path / "metrics.json"
    bad.write_text("{not json")
    with pytest.raises(ArtifactError, match="metrics.json"):
        promotion.read_metrics(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ArtifactError, match="method"):
        promotion.read_metrics(bad)
