"""Evaluate every method on the prepared test images and write the reports and the model bundle.

Recipe:
    1. score the calibration images (good, held out of training: data/split.py), the labelled
       validation defects when the miss-rate policy needs them, and every test image with each
       method (MSMA from the score cache, the rest from the images);
    2. per method, from the calibration images only: good statistics (ensemble standardisation),
       the operating point (thresholds.py), normalisation; no test label reaches the bundle;
    3. metrics over the labelled test images at that operating point (``unknown`` images are
       scored, not measured), the test-label max-F1 kept apart as the oracle column;
    4. reports (metrics, per defect, scores, curves, heatmaps, mistakes) and the bundle.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from diffad.artifacts.layout import ReportsDir
from diffad.artifacts.records import ReportSummary, write_summary
from diffad.config import Params
from diffad.data.dataset import PreparedDataset
from diffad.data.split import CALIBRATION
from diffad.errors import DataError
from diffad.evaluation.bundle import write_bundle
from diffad.evaluation.fusion import (
    FUSION_IMAGE_PARTS,
    FUSION_MAP_PARTS,
    fit_fusion,
    fused_output,
    paste_defects,
)
from diffad.evaluation.methods import (
    ENSEMBLE_PARTS,
    MSMA_METHODS,
    MethodOutput,
    Standardizer,
    ensemble_output,
)
from diffad.evaluation.models import Models
from diffad.evaluation.report import write_reports
from diffad.evaluation.thresholds import MethodThresholds, fit_thresholds
from diffad.metrics import method_metrics

log = logging.getLogger(__name__)

NORMS_PARITY_IMAGES = 8  # test images whose score norms are recomputed: timing and cache parity


@dataclass
class Evaluation:
    """Everything the reports are made of."""

    test_rows: np.ndarray  # manifest index of the test images (labelled and unknown)
    labels: np.ndarray  # (N_test,) 1 anomaly, 0 good, -1 unknown
    masks: np.ndarray | None  # (N_labelled, H, W) ground truth of the labelled test images, or None
    outputs: dict[str, MethodOutput]  # method -> outputs on the test images
    thresholds: dict[str, MethodThresholds]
    metrics: dict[str, dict]  # method -> method_metrics(...)
    ms_per_image: dict[str, float]
    standardizers: dict[str, Standardizer]


def evaluate(
    dataset: PreparedDataset, models: Models, norms: tuple[np.ndarray, np.ndarray], params: Params
) -> Evaluation:
    """Score, threshold and measure; ``norms`` = the cached (N, L), (N, L, h, w) score norms."""
    cfg = params.evaluate
    manifest = dataset.manifest
    calibration = np.flatnonzero((manifest["split"] == CALIBRATION).to_numpy())
    if calibration.size == 0:
        raise DataError(
            f"{dataset.root}: no calibration images in the manifest; rerun convert_dataset "
            "(convert_dataset.calibration_fraction / min_calibration_images set them aside)"
        )
    validation = np.flatnonzero(
        ((manifest["split"] == "validation") & (manifest["label"] == "anomaly")).to_numpy()
    )
    test_rows = np.flatnonzero((manifest["split"] == "test").to_numpy())
    labels = manifest["label"].iloc[test_rows].map({"good": 0, "anomaly": 1, "unknown": -1}).to_numpy()
    methods = tuple(cfg.methods)
    image_norms, patch_norms = norms

    def score(rows: np.ndarray, timings: dict[str, float]) -> dict[str, MethodOutput]:
        parts: dict[str, list[MethodOutput]] = {}
        for start in range(0, len(rows), 64):  # bounded memory at large resolutions
            chunk = rows[start : start + 64]
            images = dataset.images(manifest.iloc[chunk])
            chunk_norms = (image_norms[chunk], patch_norms[chunk])
            for m, o in models.score(images, scored, norms=chunk_norms, timings=timings).items():
                parts.setdefault(m, []).append(o)
        return {
            m: MethodOutput(
                np.concatenate([o.scores for o in outs]),
                None if outs[0].maps is None else np.concatenate([o.maps for o in outs]),
            )
            for m, outs in parts.items()
        }

    part_methods = (ENSEMBLE_PARTS if "ensemble" in methods else ()) + (
        FUSION_IMAGE_PARTS + FUSION_MAP_PARTS if "fused" in methods else ()
    )
    scored = tuple(m for m in dict.fromkeys(methods + part_methods) if m not in ("ensemble", "fused"))
    log.info("scoring %d calibration and %d test images with %s", len(calibration), len(test_rows), scored)
    ref_out = score(calibration, {})
    val_out = score(validation, {}) if cfg.threshold_policy == "miss_rate" and validation.size else {}
    timings: dict[str, float] = {}
    test_out = score(test_rows, timings)
    ms_per_image = {m: 1000 * timings[m] / len(test_rows) for m in scored}
    if set(MSMA_METHODS) & set(scored):
        norm_ms = _msma_norm_ms(dataset, models, test_rows, image_norms)
        for m in set(MSMA_METHODS) & set(scored):
            ms_per_image[m] += norm_ms

    standardizers = {m: Standardizer.fit(ref_out[m]) for m in scored}
    models.standardizers = standardizers
    every_output = (ref_out, test_out, val_out) if val_out else (ref_out, test_out)
    if "ensemble" in methods:
        for outputs in every_output:
            outputs["ensemble"] = ensemble_output(outputs, standardizers)
        ms_per_image["ensemble"] = sum(ms_per_image[m] for m in ENSEMBLE_PARTS)
    if "fused" in methods:
        # weights from synthetic defects pasted into the calibration images: good images no model
        # was fitted on (pasted into training images, the memory-bank baselines win by recall), and
        # no test label is used
        pasted_images, pasted_masks = paste_defects(dataset.images(manifest.iloc[calibration]), params.seed)
        fusion_parts = tuple(dict.fromkeys(FUSION_IMAGE_PARTS + FUSION_MAP_PARTS))
        pasted = models.score(pasted_images, fusion_parts)
        models.fusion = fit_fusion(ref_out, pasted, pasted_masks, standardizers)
        log.info("fused weights (chosen on synthetic defects): %s", models.fusion.to_dict())
        for outputs in every_output:
            outputs["fused"] = fused_output(outputs, standardizers, models.fusion, cfg.fused_image_score)
        ms_per_image["fused"] = sum(ms_per_image[m] for m in fusion_parts)

    labelled = labels >= 0
    masks = dataset.masks(manifest.iloc[test_rows[labelled]]) if dataset.has_masks else None
    defects = manifest["defect"].iloc[test_rows[labelled]].to_numpy()
    thresholds, metrics = {}, {}
    for m in methods:
        lab_out = test_out[m].subset(np.flatnonzero(labelled))
        thresholds[m] = fit_thresholds(ref_out[m], cfg, val_out.get(m))  # no test input at all
        metrics[m] = method_metrics(
            labels[labelled],
            lab_out.scores,
            masks,
            lab_out.maps,
            defects,
            thresholds[m].threshold,
            pixel_threshold=thresholds[m].pixel_threshold,
        )
        point = thresholds[m].operating_point
        if point.note:
            log.warning("%s: %s", m, point.note)
    return Evaluation(
        test_rows,
        labels,
        masks,
        {m: test_out[m] for m in methods},
        thresholds,
        metrics,
        {m: ms_per_image[m] for m in methods},
        standardizers,
    )


def _msma_norm_ms(
    dataset: PreparedDataset, models: Models, test_rows: np.ndarray, image_norms: np.ndarray
) -> float:
    """Per-image milliseconds of the score-norm computation (done by `cache_scores`, so not in the
    timings above); recomputing a few test images also checks the cache against `predict`'s path."""
    rows = test_rows[:NORMS_PARITY_IMAGES]
    start = time.perf_counter()
    fresh, _ = models.score_norms(dataset.images(dataset.manifest.iloc[rows]))
    per_image = 1000 * (time.perf_counter() - start) / len(rows)
    gap = float(np.max(np.abs(fresh - image_norms[rows]) / (np.abs(fresh) + 1e-6)))
    if gap > 1e-2:
        log.warning(
            "score norms recomputed for %d test images differ from the cache by %.3g (relative)",
            len(rows),
            gap,
        )
    return per_image


def run(
    dataset: PreparedDataset,
    models: Models,
    norms: tuple[np.ndarray, np.ndarray],
    params: Params,
    *,
    reports_dir: Path,
    bundle_dir: Path,
) -> Evaluation:
    """Evaluate, then write the reports and the bundle."""
    result = evaluate(dataset, models, norms, params)
    write_reports(result, dataset, params, reports_dir)
    write_bundle(bundle_dir, models, result.thresholds, result.standardizers, params, dataset.info)
    summary = ReportSummary(
        category=params.data.category,
        has_masks=bool(dataset.has_masks),
        methods=list(params.evaluate.methods),
        n_test=int((result.labels >= 0).sum()),
        n_unknown=int((result.labels < 0).sum()),
        device=str(models.device),
        torch_threads=torch.get_num_threads(),
        fusion=None if models.fusion is None else models.fusion.to_dict(),
    )
    write_summary(ReportsDir(Path(reports_dir)), summary)
    return result
