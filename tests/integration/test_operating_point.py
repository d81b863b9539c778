"""The operating point on the tiny real pipeline: why the calibration split, label-free thresholds,
one decision for evaluate, predict and the dashboard, and saving a threshold into params.yaml."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from diffad.artifacts.layout import BundleDir
from diffad.config import load_params
from diffad.data.manifest import read_manifest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def run_evaluate(project: Path, data: Path, out: Path, params: str = "params.yaml") -> dict:
    """The evaluate stage as dvc.yaml runs it, into ``out``; returns the bundle's bundle.json."""
    cmd = [
        sys.executable,
        "stages/evaluate.py",
        "--params",
        params,
        "--data",
        str(data),
        "--norms",
        "data/score_norms",
        "--denoiser",
        "models/denoiser/denoiser.safetensors",
        "--models",
        "models/methods",
        "--reports",
        str(out / "reports"),
        "--bundle",
        str(out / "bundle"),
    ]
    done = subprocess.run(cmd, cwd=project, text=True, capture_output=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(BundleDir(out / "bundle").manifest.read_text())


def thresholds_bytes(bundle: dict) -> bytes:
    return json.dumps({k: bundle[k] for k in ("thresholds", "standardizers")}, sort_keys=True).encode()


def test_models_score_their_own_training_images_lower_than_held_out_good_images(reproduced_project):
    """The reason for the split: fitted on train, every method finds train more normal than the
    calibration images, so thresholds from train images would flag more unseen good images."""
    from diffad.inference.predictor import Predictor

    project = reproduced_project
    manifest = read_manifest(project / "data/prepared/manifest.csv")
    predictor = Predictor.load(project / "models/bundle", "cpu")

    def scores(split: str, method: str) -> np.ndarray:
        paths = manifest.loc[manifest["split"] == split, "path"]
        images = [Image.open(project / "data/prepared" / p).convert("RGB") for p in paths]
        return np.array([p.score for p in predictor.predict_batch(images, method)])

    for method in ("msma_gmm", "padim", "patchcore"):
        train, calibration = scores("train", method), scores("calibration", method)
        assert np.median(train) < np.median(calibration), method


def test_the_bundle_states_its_operating_point_from_the_calibration_images(reproduced_project):
    project = reproduced_project
    manifest = read_manifest(project / "data/prepared/manifest.csv")
    n_calibration = int((manifest["split"] == "calibration").sum())
    params = load_params(project / "params.yaml")
    bundle = json.loads(BundleDir(project / "models/bundle").manifest.read_text())
    metrics = json.loads((project / "reports/metrics.json").read_text())
    rate = params.evaluate.target_false_alarm_rate
    for method, t in bundle["thresholds"].items():
        point = t["operating_point"]
        assert point["policy"] == "false_alarm_rate" and point["parameters"] == {
            "target_false_alarm_rate": rate
        }
        assert point["calibration_images"] == len(t["good_scores"]) == n_calibration
        flagged = np.count_nonzero(np.asarray(t["good_scores"]) >= t["threshold"])
        assert flagged == point["calibration_alarms"] and flagged / n_calibration <= rate
        assert point["false_alarm_rate"] < point["false_alarm_rate_upper"] < 1
        assert metrics[method]["image_threshold"] == pytest.approx(t["threshold"])
        assert metrics[method]["image_f1_oracle"] >= metrics[method]["image_f1"] - 1e-9
        assert (
            0 <= metrics[method]["image_false_alarm_rate"] <= 1
            and 0 <= metrics[method]["image_miss_rate"] <= 1
        )


def test_no_test_label_can_change_the_shipped_thresholds(reproduced_project, tmp_path):
    """Permute the labels (and masks) of the test images: the bundle's thresholds, normalisation and
    standardisation stay byte-identical, while the test metrics do change."""
    project = reproduced_project
    data = tmp_path / "prepared"
    shutil.copytree(project / "data/prepared", data)
    manifest = read_manifest(data / "manifest.csv")
    test = np.flatnonzero(((manifest["split"] == "test") & (manifest["label"] != "unknown")).to_numpy())
    order = np.random.default_rng(0).permutation(test)
    assert (manifest["label"].iloc[order].to_numpy() != manifest["label"].iloc[test].to_numpy()).any()
    for column in ("label", "defect", "mask_path"):
        manifest.loc[manifest.index[test], column] = manifest[column].iloc[order].to_numpy()
    manifest.to_csv(data / "manifest.csv", index=False, float_format="%.6g")

    permuted = run_evaluate(project, data, tmp_path / "permuted")
    original = json.loads(BundleDir(project / "models/bundle").manifest.read_text())
    assert thresholds_bytes(permuted) == thresholds_bytes(original)
    metrics = json.loads((tmp_path / "permuted/reports/metrics.json").read_text())
    assert metrics != json.loads((project / "reports/metrics.json").read_text())


def _dashboard_decisions(project: Path, method: str, monkeypatch) -> pd.DataFrame:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DIFFAD_ROOT", str(project))
    at = AppTest.from_file(str(ROOT / "dashboard/app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/operating_point.py").run()
    at.selectbox[0].select(method).run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "shipped" in d.value.columns)
    return table, at


@pytest.mark.parametrize("method", ["padim", "msma_gmm", "ensemble"])
def test_predict_dashboard_and_evaluate_agree_on_every_test_decision(reproduced_project, method, monkeypatch):
    project = reproduced_project
    scores = pd.read_csv(project / "reports/scores.csv")
    out = f"predictions_parity_{method}"
    cmd = [
        sys.executable,
        "-m",
        "diffad.cli",
        "predict",
        "data/prepared/images/test",
        "--bundle",
        "models/bundle",
    ]
    cmd += ["--method", method, "--out", out, "--threads", "1", "--force"]
    done = subprocess.run(cmd, cwd=project, text=True, capture_output=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    predicted = pd.read_csv(project / out / "predictions.csv")
    predicted["path"] = [str(Path(p).relative_to("data/prepared")) for p in predicted["path"]]
    evaluated = scores.set_index("path")[f"{method}_anomalous"]
    assert len(predicted) == len(scores)
    assert dict(zip(predicted["path"], predicted["anomalous"], strict=True)) == evaluated.to_dict()
    shown, _ = _dashboard_decisions(project, method, monkeypatch)
    assert dict(zip(shown["image"], shown["shipped"], strict=True)) == evaluated.to_dict()


def test_a_threshold_saved_in_the_dashboard_is_what_the_next_evaluate_ships(
    reproduced_project, tmp_path, monkeypatch
):
    """Move the slider, save as a fixed score: params.yaml changes in those two lines only, and
    evaluate with that file ships exactly the chosen threshold (comments: test_params_file.py)."""
    project = reproduced_project
    view = tmp_path / "view"  # the project's outputs, with a params.yaml of its own to write
    view.mkdir()
    for name in ("reports", "models", "data"):
        (view / name).symlink_to(project / name)
    shutil.copy2(project / "params.yaml", view / "params.yaml")
    before = (view / "params.yaml").read_text()

    _, at = _dashboard_decisions(view, "padim", monkeypatch)
    t = json.loads(BundleDir(project / "models/bundle").manifest.read_text())["thresholds"]["padim"]
    calibration = np.asarray(t["good_scores"])
    chosen = float(np.median(calibration))
    at.slider(key="threshold_padim").set_value(chosen).run()
    shown = at.slider(key="threshold_padim").value
    metric = next(m for m in at.metric if m.label == "False-alarm rate, calibration")
    assert metric.value.endswith(f"({np.count_nonzero(calibration >= shown)}/{calibration.size})")
    next(b for b in at.button if b.label == "Save as fixed score").click().run()
    assert at.success, [e.value for e in at.error]

    after = (view / "params.yaml").read_text()
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    assert [b.split("#")[0].split(":")[0].strip() for _, b in changed] == ["threshold_policy", "fixed_score"]
    params = load_params(view / "params.yaml")
    assert params.evaluate.threshold_policy == "fixed_score"
    shipped = run_evaluate(
        project, project / "data/prepared", tmp_path / "out", params=str(view / "params.yaml")
    )
    assert shipped["thresholds"]["padim"]["threshold"] == pytest.approx(shown, rel=1e-4)


def test_saving_the_shipped_threshold_as_a_rate_keeps_the_shipped_target(
    reproduced_project, tmp_path, monkeypatch
):
    """At the shipped threshold, "Save as target false-alarm rate" must not turn the shipped target
    into the achieved rate (0.01 into 0 when none of 48 calibration images is flagged): a target of
    0.15 on 8 calibration images flags 1 (achieved 0.125); saving leaves params.yaml byte-identical."""
    view = tmp_path / "view"
    view.mkdir()
    for name in ("reports", "data"):
        (view / name).symlink_to(reproduced_project / name)
    shutil.copytree(reproduced_project / "models", view / "models", symlinks=True)
    manifest = BundleDir(view / "models/bundle").manifest
    meta = json.loads(manifest.read_text())
    point = meta["thresholds"]["padim"]["operating_point"]
    assert point["calibration_images"] == 8 and point["calibration_alarms"] == 1
    point["parameters"]["target_false_alarm_rate"] = 0.15  # floor(0.15 * 8) = 1: the same threshold
    manifest.write_text(json.dumps(meta))
    params = (reproduced_project / "params.yaml").read_text()
    (view / "params.yaml").write_text(
        params.replace("target_false_alarm_rate: 0.125", "target_false_alarm_rate: 0.15")
    )
    before = (view / "params.yaml").read_bytes()
    assert b"target_false_alarm_rate: 0.15" in before
    _, at = _dashboard_decisions(view, "padim", monkeypatch)
    next(b for b in at.button if b.label == "Save as target false-alarm rate").click().run()
    assert not at.exception, at.exception
    assert (view / "params.yaml").read_bytes() == before
