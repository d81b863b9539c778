"""The dashboard on a host that ran nothing itself: with ``$DIFFAD_REGISTRY`` its Overview (live
model, latest attempt) and Runs show every host's runs and the prod model from the model registry,
written there by the same code a retrain uses (``flows.retrain._share_record``, ``registry.publish``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dashboard import data, live
from diffad import registry
from diffad.artifacts.layout import ProjectLayout
from diffad.artifacts.records import write_metrics
from diffad.artifacts.runs import RunRecord, write_accepted_info, write_run_record

METRICS = {"padim": {"image_auroc": 0.93, "pixel_auroc": 0.95, "aupro": 0.9}}


@pytest.fixture
def registry_url(tmp_path: Path) -> str:
    """A registry that another host (``worker``) wrote one accepted run into."""
    from flows.retrain import _share_record

    bare = tmp_path / "registry.git"
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(bare)], check=True)
    worker = ProjectLayout(tmp_path / "worker")
    record = RunRecord(
        run_id="20261204T020000Z-bottle-1a2b3c4d",
        category="bottle",
        outcome="accepted",
        state="Completed",
        metrics=METRICS,
    )
    write_run_record(worker.runs, record)
    accepted = tmp_path / "accepted"
    files = {
        "metrics.json": write_metrics(accepted / "metrics.json", METRICS),
        "run.json": write_accepted_info(
            accepted / "run.json", {"run_id": record.run_id, "category": "bottle"}
        ),
    }
    registry.publish(str(bare), tmp_path / "w1", "bottle", files, None, "promote")
    _share_record(str(bare), tmp_path / "w2", worker.runs, record.run_id)
    return str(bare)


def test_runs_page_and_live_model_read_the_registry(open_page, monkeypatch, tmp_path, registry_url):
    server = tmp_path / "server"  # the server host's checkout: no runs of its own
    server.mkdir()
    monkeypatch.setattr(data, "_registry_synced", {}, raising=False)
    at = open_page(server, "pages/runs.py")
    assert "No run records" in " ".join(i.value for i in at.info)  # without the registry: nothing

    monkeypatch.setenv("DIFFAD_REGISTRY", registry_url)
    at = open_page(server, "pages/runs.py")
    assert not at.exception
    table = at.dataframe[-1].value
    assert table["run"].tolist() == ["20261204T020000Z-bottle-1a2b3c4d"]
    assert table["category"].tolist() == ["bottle"]

    cat = data.Category("bottle", server / "reports", None, None)
    model = live.live_model(server, cat)
    assert model is not None and model.run_id == "20261204T020000Z-bottle-1a2b3c4d"
    assert model.metrics == METRICS and registry_url in model.where
    assert live.latest_attempt(server, "bottle").outcome == "accepted"
