"""The DVC pipeline end to end on tiny demo data, in a temporary clone of the project."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from diffad.artifacts.layout import BundleDir
from diffad.components.methods import detector_class
from tests.integration.conftest import TINY, dvc

pytestmark = pytest.mark.slow


def test_convert_dataset_stage_produces_manifest_and_second_repro_does_nothing(tiny_project):
    dvc(tiny_project, "repro", "convert_dataset")
    manifest = pd.read_csv(tiny_project / "data/prepared/manifest.csv")
    assert {"train", "calibration", "test"} == set(manifest["split"])
    side = TINY["data"]["resolution"]
    assert (manifest["width"] == side).all() and (manifest["height"] == side).all()
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
    side = TINY["data"]["resolution"]  # the working resolution; the denoiser read 32 px
    assert metrics.pop("evaluation_resolution") == side
    maps = np.load(tiny_project / "reports/heatmaps/msma_flow/maps.npy")
    assert maps.shape[1:] == (side, side)
    evaluated = yaml.safe_load((tiny_project / "params.yaml").read_text())["evaluate"]["methods"]
    assert list(metrics) == evaluated
    for method, values in metrics.items():
        for key in ("image_auroc", "image_ap", "image_f1"):
            assert 0.0 <= values[key] <= 1.0, (method, key, values[key])
        if detector_class(method).has_map:
            assert 0.0 <= values["pixel_auroc"] <= 1.0 and 0.0 <= values["aupro"] <= 1.0
        else:
            assert values["pixel_auroc"] is None
    timing = json.loads((tiny_project / "reports/timing.json").read_text())
    assert set(timing) == set(metrics) and all(t["ms_per_image"] > 0 for t in timing.values())
    scores = pd.read_csv(tiny_project / "reports/scores.csv")
    assert "unknown" in set(scores["label"])
    assert BundleDir(tiny_project / "models/bundle").manifest.exists()
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
    from PIL import Image

    with Image.open(tiny_project / predicted["heatmap"].iloc[0]) as heat:  # the input's size + colour scale
        assert heat.height == TINY["data"]["resolution"] and heat.width > heat.height
    again = subprocess.run(cmd, cwd=tiny_project, text=True, capture_output=True, timeout=600)
    assert again.returncode == 2 and "--force" in again.stderr
    # the ensemble recomputes the MSMA score norms from the denoiser, rounded as the cache stores
    # them (float16 patch norms): before that rounding it differed by up to 2e-2
    cmd = [*cmd[:-6], "--method", "ensemble", "--out", "predictions_ensemble", "--threads", "1"]
    done = subprocess.run(cmd, cwd=tiny_project, text=True, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr
    predicted = pd.read_csv(tiny_project / "predictions_ensemble/predictions.csv")
    assert predicted["score"].to_numpy() == pytest.approx(picked["ensemble_score"].to_numpy(), rel=2e-3)
    # the fused method scores from the bundle's weights exactly as `evaluate` did
    cmd = [*cmd[:-6], "--method", "fused", "--out", "predictions_fused", "--threads", "1"]
    done = subprocess.run(cmd, cwd=tiny_project, text=True, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr
    predicted = pd.read_csv(tiny_project / "predictions_fused/predictions.csv")
    assert predicted["score"].to_numpy() == pytest.approx(picked["fused_score"].to_numpy(), rel=1e-4)


def test_convert_predict_and_dashboard_upload_score_awkward_images_identically(reproduced_project, tmp_path):
    """One reader (issue 11): the bundle scores a 16-bit, RGBA, CMYK, palette, EXIF-rotated,
    non-square or huge file the same through convert_dataset, `diffad predict` and the upload."""
    import numpy as np
    import torch

    from dashboard.upload import read_upload
    from diffad.data.dataset import load_prepared
    from diffad.data.prepare import prepare_dataset
    from diffad.data.settings import ConvertDatasetSettings, DataSettings
    from diffad.inference.predict import predict_files
    from diffad.inference.predictor import Predictor
    from tests.faults.awkward import awkward_images

    predictor = Predictor.load(reproduced_project / "models/bundle", "cpu")
    source = tmp_path / "raw"
    files = awkward_images(source / "train" / "good", np.random.default_rng(5))
    (source / "test" / "good").mkdir(parents=True)
    (source / "test" / "good" / "x.png").write_bytes(files[0].read_bytes())
    data = DataSettings(
        source="folder", path=str(source), category="x", resolution=predictor.meta["resolution"],
        transform=predictor.meta["transform"],
    )  # fmt: skip
    no_calibration = ConvertDatasetSettings(
        min_train_images=1, min_test_images=1, calibration_fraction=0.0, min_calibration_images=0
    )
    prepare_dataset(data, no_calibration, 0, tmp_path / "p")
    dataset = load_prepared(tmp_path / "p")
    rows = dataset.rows(split="train")
    by_name = {row.source_path.rsplit("/", 1)[-1]: i for i, row in enumerate(rows.itertuples())}
    order = [by_name[f.name] for f in files]
    # One image at a time (upload) vs a batch: the denoiser's float32 sums round differently, and
    # the ensemble divides MSMA's norms by the spread of only 8 calibration images, magnifying it.
    for method, rtol in (("padim", 1e-4), ("ensemble", 3e-3)):
        converted = predictor.models.score(dataset.images(rows), (method,))[method].scores[order]
        table = predict_files(predictor, files, method, tmp_path / f"out-{method}")
        uploaded = []
        for path in files:
            image, problem = read_upload(path.name, path.read_bytes())
            assert problem is None, problem
            uploaded.append(predictor.predict(image, method).score)
        assert list(table["path"]) == [str(f) for f in files]
        np.testing.assert_allclose(table["score"], converted, rtol=rtol, err_msg=method)
        np.testing.assert_allclose(uploaded, converted, rtol=rtol, err_msg=method)
        assert torch.isfinite(torch.tensor(uploaded)).all()


def test_a_bundle_written_before_threads_became_a_fixed_count_still_loads(reproduced_project, tmp_path):
    """Bundles from before issue 11 carry `runtime.threads: 0`, now refused in params.yaml: the
    runtime section says where the producer ran, not what the model is, so loading ignores it."""
    import shutil

    from diffad.inference.predictor import Predictor

    bundle = tmp_path / "bundle"
    shutil.copytree(reproduced_project / "models/bundle", bundle)
    meta = json.loads(BundleDir(bundle).manifest.read_text())
    meta["params"]["runtime"]["threads"] = 0
    BundleDir(bundle).manifest.write_text(json.dumps(meta))
    assert Predictor.load(bundle, "cpu").methods == meta["methods"]


def test_serving_fused_scores_only_its_weighted_parts(reproduced_project):
    """A part the fused weights give 0 is not run when serving (it was the whole cost of predict),
    and the fused output is the one every part would give."""
    import dataclasses

    import torch

    from diffad.components.detector import Calibration
    from diffad.inference.predictor import Predictor

    models = Predictor.load(reproduced_project / "models/bundle", "cpu").models
    fitted = models.calibration.composites["fused"]
    only_patchcore = {m: float(m == "patchcore") for m in fitted["map_weights"]}
    weights = {"map_weights": only_patchcore, "image_weights": fitted["image_weights"]}
    served = models.with_calibration(dataclasses.replace(models.calibration, composites={"fused": weights}))
    side = models.params.data.resolution
    images = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(0)) * 2 - 1
    timings: dict[str, float] = {}
    fused = served.score(images, ("fused",), timings=timings)["fused"]
    assert set(timings) == {"patchcore"}  # map_max: the image score is the map's maximum
    every = served.score(images, ("fused", "msma_flow", "ddim", "padim", "msma_features"))["fused"]
    assert np.array_equal(fused.scores, every.scores) and np.array_equal(fused.maps, every.maps)
    assert isinstance(models.calibration, Calibration)


def test_a_bundle_written_before_composites_had_their_key_still_serves_fused(reproduced_project, tmp_path):
    """Bundles from before issue 12 keep the fused weights under `fusion` (accepted runs still
    serve them): they load, and score `fused` as the new `composites` key does."""
    import shutil

    import numpy as np
    import torch

    from diffad.inference.predictor import Predictor

    bundle = tmp_path / "bundle"
    shutil.copytree(reproduced_project / "models/bundle", bundle)
    meta = json.loads(BundleDir(bundle).manifest.read_text())
    composites = meta.pop("composites")
    meta["fusion"] = composites["fused"]
    BundleDir(bundle).manifest.write_text(json.dumps(meta))
    images = torch.rand(2, 3, meta["resolution"], meta["resolution"]) * 2 - 1
    old = Predictor.load(bundle, "cpu").models.score(images, ("fused", "ensemble"))
    new = Predictor.load(reproduced_project / "models/bundle", "cpu").models.score(
        images, ("fused", "ensemble")
    )
    for method in ("fused", "ensemble"):
        np.testing.assert_allclose(old[method].scores, new[method].scores, rtol=1e-6)
