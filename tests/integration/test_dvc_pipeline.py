"""The DVC pipeline end to end on tiny demo data, in a temporary clone of the project."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.integration.conftest import dvc

pytestmark = pytest.mark.slow


def test_convert_dataset_stage_produces_manifest_and_second_repro_does_nothing(tiny_project):
    dvc(tiny_project, "repro", "convert_dataset")
    manifest = pd.read_csv(tiny_project / "data/prepared/manifest.csv")
    assert {"train", "test"} == set(manifest["split"])
    assert (manifest["width"] == 32).all() and (manifest["height"] == 32).all()
    validation = json.loads((tiny_project / "reports/validation/validation.json").read_text())
    assert validation["success"] is True
    again = dvc(tiny_project, "repro", "convert_dataset")
    assert "didn't change, skipping" in again.stdout or "is cached" in again.stdout
    status = dvc(tiny_project, "status", "convert_dataset", "--json")
    assert json.loads(status.stdout) == {}


def test_changing_a_data_param_reruns_convert_dataset(tiny_project):
    dvc(tiny_project, "repro", "convert_dataset")
    dvc(tiny_project, "exp", "run", "-S", "data.category=washer", "convert_dataset")
    info = json.loads((tiny_project / "data/prepared/info.json").read_text())
    assert info["category"] == "washer"


def test_full_pipeline_reports_every_method(reproduced_project):
    tiny_project = reproduced_project
    metrics = json.loads((tiny_project / "reports/metrics.json").read_text())
    assert set(metrics) == {"msma_gmm", "msma_flow", "ddim", "ensemble", "fused", "patchcore", "padim"}
    for method, values in metrics.items():
        for key in ("image_auroc", "image_ap", "image_f1"):
            assert 0.0 <= values[key] <= 1.0, (method, key, values[key])
        if method != "msma_gmm":
            assert 0.0 <= values["pixel_auroc"] <= 1.0 and 0.0 <= values["aupro"] <= 1.0
        else:
            assert values["pixel_auroc"] is None
        assert values["ms_per_image"] > 0
    scores = pd.read_csv(tiny_project / "reports/scores.csv")
    assert "unknown" in set(scores["label"])
    assert (tiny_project / "models/bundle/bundle.json").exists()
    assert any((tiny_project / "reports/heatmaps/ddim").rglob("*.png"))
    shown = dvc(tiny_project, "metrics", "show", "--json")
    assert "image_auroc" in shown.stdout


def test_predict_matches_evaluation_and_refuses_to_overwrite(reproduced_project):
    """`diffad predict` on the prepared test images reproduces evaluate's scores (same bundle,
    same preprocessing), and does not overwrite earlier results without --force."""
    import subprocess
    import sys

    tiny_project = reproduced_project
    scores = pd.read_csv(tiny_project / "reports/scores.csv")
    picked = scores[scores["label"] != "unknown"].iloc[[0, -1]]
    # predict from the raw-like prepared PNGs: already at the resolution, the transform is a no-op
    files = [str(tiny_project / "data/prepared" / p) for p in picked["path"]]
    cmd = [
        sys.executable,
        "-m",
        "diffad.cli",
        "predict",
        *files,
        "--bundle",
        "models/bundle",
        "--method",
        "padim",
        "--out",
        "predictions",
        "--threads",
        "1",
    ]
    done = subprocess.run(cmd, cwd=tiny_project, text=True, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr
    predicted = pd.read_csv(tiny_project / "predictions/predictions.csv")
    assert predicted["score"].to_numpy() == pytest.approx(picked["padim_score"].to_numpy(), rel=1e-4)
    assert list(predicted["anomalous"]) == list(picked["padim_anomalous"])
    again = subprocess.run(cmd, cwd=tiny_project, text=True, capture_output=True, timeout=600)
    assert again.returncode == 2 and "--force" in again.stderr
    # the ensemble recomputes the MSMA score norms from the denoiser (the cache holds float16)
    cmd = [*cmd[:-6], "--method", "ensemble", "--out", "predictions_ensemble", "--threads", "1"]
    done = subprocess.run(cmd, cwd=tiny_project, text=True, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr
    predicted = pd.read_csv(tiny_project / "predictions_ensemble/predictions.csv")
    assert predicted["score"].to_numpy() == pytest.approx(
        picked["ensemble_score"].to_numpy(), rel=1e-2, abs=1e-2
    )
    # the fused method scores from the bundle's weights exactly as `evaluate` did
    cmd = [*cmd[:-6], "--method", "fused", "--out", "predictions_fused", "--threads", "1"]
    done = subprocess.run(cmd, cwd=tiny_project, text=True, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr
    predicted = pd.read_csv(tiny_project / "predictions_fused/predictions.csv")
    assert predicted["score"].to_numpy() == pytest.approx(
        picked["fused_score"].to_numpy(), rel=1e-2, abs=1e-2
    )
