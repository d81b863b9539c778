"""Evaluate every method on the prepared test images and write the reports and the model bundle.

Recipe:
    1. score the calibration images (good, held out of training: data/split.py), the labelled
       validation defects when the miss-rate policy needs them, and every test image with each
       method (MSMA from the score cache, the rest from the images);
    2. per method, from the calibration images only: good statistics (the composites'
       standardisation), each composite's fitted state (the fused weights), the operating point
       (thresholds.py), normalisation; no test label reaches the bundle;
    3. metrics over the labelled test images at that operating point (``unknown`` images are
       scored, not measured), the test-label max-F1 kept apart as the oracle column;
    4. reports (metrics, per defect, scores, curves, heatmaps, mistakes) and the bundle.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from diffad.artifacts.layout import ReportsDir
from diffad.artifacts.records import ReportSummary, write_summary
from diffad.components.detector import Calibration, CalibrationSet, MethodOutput, Standardizer
from diffad.components.methods import detector_class, is_composite, scored_methods
from diffad.config import Params
from diffad.core.errors import DataError
from diffad.data.dataset import PreparedDataset
from diffad.evaluation.report import write_reports
from diffad.evaluation.result import Evaluation
from diffad.evaluation.thresholds import fit_thresholds
from diffad.inference.bundle import write_bundle
from diffad.inference.models import Models
from diffad.metrics import method_metrics

log = logging.getLogger(__name__)

NORMS_PARITY_IMAGES = 8  # test images whose score norms are recomputed: timing and cache parity


def evaluate(
    dataset: PreparedDataset, models: Models, norms: tuple[np.ndarray, np.ndarray], params: Params
) -> Evaluation:
    """Score, threshold and measure; ``norms`` = the cached (N, L), (N, L, h, w) score norms.

    ``models`` is only read: what is fitted here for serving comes back in
    :attr:`Evaluation.calibration` (``models.with_calibration`` builds the served models).
    """
    cfg = params.evaluate
    manifest = dataset.manifest
    calibration = dataset.positions(dataset.calibration_rows())
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

    scored = scored_methods(methods)
    composites = tuple(m for m in methods if is_composite(m))
    log.info("scoring %d calibration and %d test images with %s", len(calibration), len(test_rows), scored)
    ref_out = score(calibration, {})
    val_out = score(validation, {}) if cfg.threshold_policy == "miss_rate" and validation.size else {}
    timings: dict[str, float] = {}
    test_out = score(test_rows, timings)
    ms_per_image = {m: 1000 * timings[m] / len(test_rows) for m in scored}
    uses_norms = {m for m in scored if detector_class(m).fits_on == "score_norms"}
    if uses_norms:
        norm_ms = _msma_norm_ms(dataset, models, test_rows, image_norms)
        for m in uses_norms:
            ms_per_image[m] += norm_ms

    standardizers = {m: Standardizer.fit(ref_out[m]) for m in scored}
    calibration_set = CalibrationSet(
        outputs=ref_out,
        images=lambda: dataset.images(manifest.iloc[calibration]),
        standardizers=standardizers,
        score=lambda images, parts: models.score(images, parts),
        seed=params.seed,
    )
    fitted = Calibration(standardizers, {m: detector_class(m).fit(calibration_set) for m in composites})
    for m, state in fitted.composites.items():
        if state:
            log.info("%s fitted on the calibration images: %s", m, state)
    served = models.with_calibration(fitted)
    every_output = (ref_out, test_out, val_out) if val_out else (ref_out, test_out)
    for m in composites:
        combiner = served.composite(m)
        for outputs in every_output:
            outputs[m] = combiner.combine(outputs)
        ms_per_image[m] = sum(ms_per_image[p] for p in combiner.needed_parts())  # what serving runs

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
        fitted,
    )


def _msma_norm_ms(
    dataset: PreparedDataset, models: Models, test_rows: np.ndarray, image_norms: np.ndarray
) -> float:
    """Per-image milliseconds of the score-norm computation (done by `score_norms`, so not in the
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
    headline_dir: Path | None = None,
) -> Evaluation:
    """Evaluate, then write the reports (and the headline metrics) and the bundle."""
    result = evaluate(dataset, models, norms, params)
    write_reports(result, dataset, params, reports_dir, headline=headline_dir)
    write_bundle(bundle_dir, models, result.thresholds, result.calibration, params, dataset.info)
    summary = ReportSummary(
        category=params.data.category,
        has_masks=bool(dataset.has_masks),
        methods=list(params.evaluate.methods),
        n_test=int((result.labels >= 0).sum()),
        n_unknown=int((result.labels < 0).sum()),
        device=str(models.device),
        torch_threads=torch.get_num_threads(),
        fusion=result.calibration.composites.get("fused"),
        evaluation_resolution=dataset.resolution,
    )
    write_summary(ReportsDir(Path(reports_dir)), summary)
    return result
