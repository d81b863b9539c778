"""Fixture artifacts for the dashboard tests: a small project tree with known answers.

``make_fixture_artifacts(root)`` writes, *through the pipeline's own writers* (the artifact
contract :mod:`diffad.artifacts`, the Great Expectations suite of :mod:`diffad.data.validation`),
category ``fabric`` in the workspace (``reports/``, ``data/prepared/``, ``models/bundle/``), a
second category ``washer`` as an accepted retrain under ``runs/washer/accepted/`` (metrics only),
two accepted run records, one rejected at the validation gate and one broken file under
``runs/history/``. The metric values are chosen by hand so the tests know the answers; the
end-to-end contract test (tests/integration/test_artifact_contract.py) runs the dashboard on
what the real tiny pipeline writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from diffad.artifacts.layout import BundleDir, ProjectLayout
from diffad.artifacts.records import (
    ReportSummary,
    copy_validation,
    read_validation,
    write_metrics,
    write_per_defect,
    write_summary,
    write_timing,
)
from diffad.artifacts.runs import RunRecord, write_accepted_info, write_bundle_manifest, write_run_record
from diffad.data.manifest import write_info
from diffad.data.validation import validate_manifest
from diffad.viz.heatmap import overlay_heatmap

CATEGORY, OTHER_CATEGORY = "fabric", "washer"
METHODS = ("msma_gmm", "msma_flow", "ddim", "ensemble", "patchcore", "padim")
MAP_METHODS = METHODS[1:]  # msma_gmm scores images only
SIDE = 32
# (defect, stem, label) in manifest order; normalized ensemble score; threshold 100.
TEST = [
    ("good", "000", "good"),
    ("good", "001", "good"),
    ("good", "002", "good"),
    ("good", "003", "good"),
    ("hole", "000", "anomaly"),
    ("hole", "001", "anomaly"),
    ("hole", "002", "anomaly"),
    ("stain", "000", "anomaly"),
    ("stain", "001", "anomaly"),
    ("unknown", "000", "unknown"),
]
ENSEMBLE_NORM = [20.0, 45.0, 70.0, 140.0, 300.0, 520.0, 180.0, 410.0, 60.0, 250.0]
ENSEMBLE_FALSE_POSITIVES = ["good/003"]  # good, norm >= 100
ENSEMBLE_MISSES = ["stain/001"]  # anomaly, norm < 100 (unknown/000 is never a mistake)
ENSEMBLE_TOP = "hole/001"  # highest score
N_GOOD, N_HOLE = 4, 3

IMAGE_AUROC = {
    "msma_gmm": 0.912,
    "msma_flow": 0.934,
    "ddim": 0.871,
    "ensemble": 0.987,
    "patchcore": 0.946,
    "padim": 0.903,
}
PIXEL_AUROC = {
    "msma_gmm": None,
    "msma_flow": 0.948,
    "ddim": 0.962,
    "ensemble": 0.958,
    "patchcore": 0.941,
    "padim": 0.929,
}
AUPRO = {
    "msma_gmm": None,
    "msma_flow": 0.861,
    "ddim": 0.874,
    "ensemble": 0.893,
    "patchcore": 0.852,
    "padim": 0.817,
}
MS_PER_IMAGE = {
    "msma_gmm": 3.5,
    "msma_flow": 8.25,
    "ddim": 41.0,
    "ensemble": 52.0,
    "patchcore": 2.75,
    "padim": 1.5,
}
BEST_IMAGE_AUROC = ("ensemble", 0.987)
BEST_PIXEL_AUROC = ("ddim", 0.962)
# washer: padim is best here, so "best" must be judged per category
WASHER_IMAGE_AUROC = {"ensemble": 0.948, "patchcore": 0.931, "padim": 0.955}
# Prefect run records for fabric, oldest first: ensemble image AUROC 0.95 -> 0.987 (+0.037)
HISTORY = [
    ("run-early", "2026-11-20T10:00:00+00:00", 0.950),
    ("run-late", "2026-11-22T10:00:00+00:00", 0.987),
]
FAILED_CHECK = "train_test_leak"  # the planted copy: test image good/003 is train image 017
OFFENDING = ["images/test/good/003.png"]
REJECTED_RUN = "run-rejected"  # a retrain stopped at the gate, after the two accepted ones


def _metrics(method: str) -> dict:
    auroc = IMAGE_AUROC[method]
    return {
        "image_auroc": auroc,
        "image_ap": round(auroc - 0.02, 3),
        "pixel_auroc": PIXEL_AUROC[method],
        "aupro": AUPRO[method],
        "image_f1": round(auroc - 0.05, 3),
        "pixel_f1": None if PIXEL_AUROC[method] is None else round(PIXEL_AUROC[method] - 0.4, 3),
        "image_f1_oracle": round(auroc - 0.01, 3),
        "image_false_alarm_rate": 0.05,
        "image_miss_rate": round(1.05 - auroc, 3),
    }


def _validation(reports_validation: Path) -> None:
    """The real GX suite on a manifest of the fixture's images with one planted train/test copy."""
    rows = [
        {
            "path": f"images/test/{d}/{s}.png",
            "split": "test",
            "label": lab,
            "defect": d,
            "mask_path": f"masks/test/{d}/{s}.png" if lab == "anomaly" else "",
            "sha256": f"test-{i}",
        }
        for i, (d, s, lab) in enumerate(TEST)
    ]
    rows += [
        {
            "path": f"images/train/good/{i:03d}.png",
            "split": "train",
            "label": "good",
            "defect": "good",
            "mask_path": "",
            "sha256": f"train-{i}",
        }
        for i in range(20)
    ]
    rows[3]["sha256"] = "train-17"  # test good/003 is a copy of train good/017
    frame = pd.DataFrame(rows).assign(
        width=SIDE,
        height=SIDE,
        channels=3,
        mean=0.5,
        std=0.1,
        source_path=lambda f: f["path"],
        source_mode="RGB",
        mask_pixels=lambda f: (f["label"] == "anomaly") * 40,
        pixel_sha256=lambda f: "pixels-" + f["path"],  # the copy was re-encoded (lossy): other pixels
        origin="source",
    )
    report = validate_manifest(frame, resolution=SIDE, has_masks=True, min_train_images=8, min_test_images=4)
    report.write(reports_validation)


def _blob(i: int) -> np.ndarray:
    """(SIDE, SIDE) bool disc, placed differently per image."""
    yy, xx = np.mgrid[:SIDE, :SIDE]
    cy, cx = 8 + (5 * i) % 16, 8 + (7 * i) % 16
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= 16


def _images(prepared: Path) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Writes the prepared test images and masks; returns (maps (N, SIDE, SIDE) float32, masks)."""
    rng = np.random.default_rng(0)
    maps, masks = [], []
    for i, (defect, stem, label) in enumerate(TEST):
        texture = 120 + 30 * np.sin(np.arange(SIDE) / 2.0)[None, :] + rng.normal(0, 6, (SIDE, SIDE))
        blob = _blob(i) if label == "anomaly" else np.zeros((SIDE, SIDE), bool)
        gray = np.clip(np.where(blob, 40, texture), 0, 255).astype(np.uint8)
        path = prepared / "images" / "test" / defect / f"{stem}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.stack([gray] * 3, axis=-1)).save(path)
        mask = None
        if label == "anomaly":
            mask = blob
            mask_path = prepared / "masks" / "test" / defect / f"{stem}.png"
            mask_path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(blob.astype(np.uint8) * 255).save(mask_path)
        masks.append(mask)
        maps.append(0.1 + 0.05 * rng.random((SIDE, SIDE)) + 0.8 * blob)
    return np.stack(maps).astype(np.float32), masks


def _curves(reports: Path) -> None:
    x = np.linspace(0.0, 1.0, 21)
    roc, pr, pro = [], [], []
    for m in METHODS:
        a = IMAGE_AUROC[m]
        roc.append(pd.DataFrame({"method": m, "x": x, "y": x ** (1 / a - 1)}))  # area = a
        pr.append(pd.DataFrame({"method": m, "x": x, "y": 1 - (1 - a) * x}))
        if AUPRO[m] is not None:
            pro.append(pd.DataFrame({"method": m, "x": 0.3 * x, "y": np.minimum(1.0, 3 * AUPRO[m] * x)}))
    (reports / "curves").mkdir(parents=True, exist_ok=True)
    for name, parts in (("roc", roc), ("pr", pr), ("pro", pro)):
        pd.concat(parts).to_csv(reports / "curves" / f"{name}.csv", index=False)


def make_fixture_artifacts(root: Path) -> Path:
    """Write the fixture project under ``root``; returns ``root``."""
    root = Path(root)
    layout = ProjectLayout(root)
    reports, prepared = layout.reports.root, layout.prepared
    maps, masks = _images(prepared)
    write_info(
        {
            "category": CATEGORY,
            "source": "synthetic",
            "resolution": SIDE,
            "has_masks": True,
            "counts": {"train": 0, "test": len(TEST)},
            "skipped": [{"path": "raw/bad.png", "reason": "truncated file"}],
        },
        prepared / "info.json",
    )
    files = layout.reports
    n_unknown = sum(lab == "unknown" for _, _, lab in TEST)
    write_summary(files, ReportSummary(CATEGORY, True, list(METHODS), len(TEST) - n_unknown, n_unknown))
    write_metrics(files.metrics, {m: _metrics(m) for m in METHODS})
    write_timing(files, MS_PER_IMAGE)
    per_defect = {m: {d: _metrics(m) for d in ("hole", "stain")} for m in METHODS}
    write_per_defect(files, per_defect, ["msma_gmm: pixel metrics skipped: no anomaly maps"])

    norm = np.array(ENSEMBLE_NORM)
    table = pd.DataFrame(
        {
            "path": [f"images/test/{d}/{s}.png" for d, s, _ in TEST],
            "split": "test",
            "label": [lab for _, _, lab in TEST],
            "defect": [d for d, _, _ in TEST],
        }
    )
    for k, m in enumerate(METHODS):
        method_norm = norm if m == "ensemble" else np.roll(norm, k)
        table[f"{m}_score"] = method_norm / 1000.0 + k
        table[f"{m}_norm"] = method_norm
        table[f"{m}_anomalous"] = method_norm >= 100
    table.to_csv(reports / "scores.csv", index=False)
    _curves(reports)

    for m in MAP_METHODS:
        folder = reports / "heatmaps" / m
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "maps.npy", maps.astype(np.float16))
        for i, (defect, stem, _) in enumerate(TEST):
            rgb = np.asarray(Image.open(prepared / "images" / "test" / defect / f"{stem}.png").convert("RGB"))
            overlay = overlay_heatmap(rgb, maps[i], vmin=0.1, vmax=0.9, mask=masks[i], out_size=(64, 64))
            (folder / defect).mkdir(exist_ok=True)
            Image.fromarray(overlay).save(folder / defect / f"{stem}.png")

    _validation(layout.validation.root)

    thresholds = {
        m: {
            "threshold": 0.1 + k,
            "map_vmin": 0.1 if m in MAP_METHODS else None,
            "map_vmax": 0.9 if m in MAP_METHODS else None,
            "good_scores": list(np.linspace(k, k + 0.09, 40)),
        }
        for k, m in enumerate(METHODS)
    }
    write_bundle_manifest(
        BundleDir(layout.bundle.root),
        {"category": CATEGORY, "methods": list(METHODS), "thresholds": thresholds},
    )

    washer = layout.runs.accepted(OTHER_CATEGORY)
    washer_metrics = {m: {"image_auroc": v, "pixel_auroc": None} for m, v in WASHER_IMAGE_AUROC.items()}
    write_metrics(washer.reports.metrics, washer_metrics)
    write_metrics(washer.metrics, washer_metrics)
    write_accepted_info(washer.run, {"run_id": "run-washer", "category": OTHER_CATEGORY})
    for name, finished, auroc in HISTORY:
        record = RunRecord(
            run_id=name,
            category=CATEGORY,
            outcome="accepted",
            state="Completed",
            finished=finished,
            metrics={"ensemble": {"image_auroc": auroc}, "padim": {"image_auroc": 0.903}},
        )
        write_run_record(layout.runs, record)
    kept = layout.runs.validation(REJECTED_RUN)
    copy_validation(layout.validation, kept)
    rejected = RunRecord(
        run_id=REJECTED_RUN,
        category=CATEGORY,
        outcome="rejected",
        state="Failed",
        finished="2026-11-23T10:00:00+00:00",
        reason=f"ValidationGateFailed: {FAILED_CHECK}: {OFFENDING[0]}",
        validation=read_validation(kept).digest(),
        validation_report=kept.report.relative_to(root).as_posix(),
    )
    write_run_record(layout.runs, rejected)
    (layout.runs.history / "broken.json").write_text("{not json")
    return root
