"""The evaluation's files: metrics, per-image scores, curves, heatmap overlays, mistake montages.

Where each file goes and the shape of each JSON document: :mod:`diffad.artifacts` (the artifact
contract; docs/architecture.md, "Reports"). Overlays are drawn on the prepared dataset's display
copy of the test image (the source resolution, capped), the anomaly map upsampled onto it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from diffad.artifacts.layout import HeadlineDir, ReportsDir, display_path
from diffad.artifacts.records import write_headline, write_metrics, write_per_defect, write_timing
from diffad.config import Params
from diffad.data.dataset import PreparedDataset
from diffad.evaluation.result import Evaluation
from diffad.evaluation.thresholds import calibration_figures
from diffad.metrics import curves
from diffad.metrics.border import border_peak_share
from diffad.viz.heatmap import overlay_heatmap, save_png
from diffad.viz.montage import mistake_montage, select_mistakes

log = logging.getLogger(__name__)

MONTAGE_SIDE = 128  # mistake montage tiles


def write_reports(
    result: Evaluation, dataset: PreparedDataset, params: Params, out: Path, headline: Path | None = None
) -> None:
    """Every report under ``out``; with ``headline``, the per-method headline files there too."""
    reports = ReportsDir(Path(out))
    reports.root.mkdir(parents=True, exist_ok=True)
    metrics = {
        m: {
            **r["overall"],
            **calibration_figures(result.thresholds[m].operating_point),
            "border_peak_share": _border_peaks(result, m),
        }
        for m, r in result.metrics.items()
    }
    write_metrics(reports.metrics, metrics, evaluation_resolution=dataset.resolution)
    write_timing(reports, {m: result.ms_per_image[m] for m in result.metrics})
    if headline is not None:
        write_headline(HeadlineDir(Path(headline)), reports.metrics)
    per_defect = {m: r["per_defect"] for m, r in result.metrics.items()}
    # A note is about one method (e.g. msma_gmm has no anomaly map): say which.
    notes = sorted(
        {n if n.startswith(f"{m}:") else f"{m}: {n}" for m, r in result.metrics.items() for n in r["notes"]}
    )
    write_per_defect(reports, per_defect, notes)
    scores = _scores_table(result, dataset)
    scores.to_csv(reports.scores, index=False)
    _write_curves(result, reports)
    _write_heatmaps(result, dataset, params, reports)
    _write_mistakes(result, dataset, params, reports)
    log.info("reports written to %s", reports.root)


def _border_peaks(result: Evaluation, method: str) -> float | None:
    """Share of the good test images whose map peaks within 8 % of the border (a padding frame)."""
    maps, good = result.outputs[method].maps, result.labels == 0
    return None if maps is None or not good.any() else border_peak_share(maps[good])


def _scores_table(result: Evaluation, dataset: PreparedDataset) -> pd.DataFrame:
    rows = dataset.manifest.iloc[result.test_rows]
    table = rows[["path", "split", "label", "defect"]].reset_index(drop=True)
    for m, output in result.outputs.items():
        t = result.thresholds[m]
        table[f"{m}_score"] = output.scores
        table[f"{m}_norm"] = np.round(t.normalize(output.scores), 3)
        table[f"{m}_anomalous"] = t.decide(output.scores)
    return table


def _labelled(result: Evaluation) -> np.ndarray:
    return np.flatnonzero(result.labels >= 0)


def _write_curves(result: Evaluation, reports: ReportsDir) -> None:
    reports.curves.mkdir(parents=True, exist_ok=True)
    idx = _labelled(result)
    labels, masks = result.labels[idx], result.masks
    frames: dict[str, list[pd.DataFrame]] = {"roc": [], "pr": [], "pro": []}
    for m, output in result.outputs.items():
        maps = None if output.maps is None else output.maps[idx]
        for name, frame in curves(labels, output.scores[idx], masks, maps).items():
            frames[name].append(frame[["x", "y"]].assign(method=m)[["method", "x", "y"]])
    for name, parts in frames.items():
        table = pd.concat(parts) if parts else pd.DataFrame(columns=["method", "x", "y"])
        table.to_csv(reports.curve_table(name), index=False)  # the dashboard and `dvc plots`
        _render_png(table, name, reports.curve_png(name))


AXES = {
    "roc": ("false positive rate", "true positive rate"),
    "pr": ("recall", "precision"),
    "pro": ("false positive rate", "per-region overlap"),
}


def _render_png(table: pd.DataFrame, name: str, path: Path) -> None:
    """Offline PNG of a curve (DVC's own HTML loads its JavaScript from a CDN)."""
    if table.empty:
        return
    try:
        import vl_convert
    except ImportError:  # optional: the CSVs are the artifact
        return
    x, y = AXES[name]
    spec = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": name.upper(),
        "width": 360,
        "height": 300,
        "data": {"values": table.to_dict(orient="records")},
        "mark": {"type": "line", "interpolate": "step-after" if name == "roc" else "linear"},
        "encoding": {
            "x": {"field": "x", "type": "quantitative", "title": x},
            "y": {"field": "y", "type": "quantitative", "title": y},
            "color": {"field": "method", "type": "nominal"},
        },
    }
    path.write_bytes(vl_convert.vegalite_to_png(spec, scale=2))


def _display_image(dataset: PreparedDataset, row: pd.Series) -> np.ndarray:
    """The test image an overlay is drawn on (H, W, 3): the prepared dataset's display copy (the
    source image at its own resolution, capped; written by convert_dataset), else the prepared one."""
    display = dataset.root / display_path(row["path"])
    path = display if display.is_file() else dataset.root / row["path"]
    return np.asarray(Image.open(path).convert("RGB"))


def _mask(dataset: PreparedDataset, row: pd.Series) -> np.ndarray | None:
    mask_path = row.get("mask_path")
    if not isinstance(mask_path, str) or not mask_path:
        return None
    return np.asarray(Image.open(dataset.root / mask_path)) > 0


def _write_heatmaps(
    result: Evaluation, dataset: PreparedDataset, params: Params, reports: ReportsDir
) -> None:
    rows = dataset.manifest.iloc[result.test_rows]
    order = np.argsort(-np.abs(result.labels), kind="stable")[: params.evaluate.max_overlays]
    with_maps = {m: o for m, o in result.outputs.items() if o.maps is not None}
    for m, output in with_maps.items():
        reports.maps(m).parent.mkdir(parents=True, exist_ok=True)
        np.save(reports.maps(m), output.maps.astype(np.float16))
    for i in order:  # each image and its mask read once, drawn for every method
        row = rows.iloc[i]
        image = _display_image(dataset, row)
        size = (image.shape[0], image.shape[1])
        mask = _mask(dataset, row)
        for m, output in with_maps.items():
            t = result.thresholds[m]
            overlay = overlay_heatmap(
                image, output.maps[i], vmin=t.map_vmin, vmax=t.map_vmax, mask=mask, out_size=size
            )
            save_png(overlay, reports.overlay(m, row["defect"], row["path"]))


def _write_mistakes(
    result: Evaluation, dataset: PreparedDataset, params: Params, reports: ReportsDir
) -> None:
    reports.mistakes.mkdir(parents=True, exist_ok=True)
    idx = _labelled(result)
    rows = dataset.manifest.iloc[result.test_rows[idx]]
    for m, output in result.outputs.items():
        t = result.thresholds[m]
        scores = output.scores[idx]
        maps = None if output.maps is None else output.maps[idx]
        fp, miss = select_mistakes(result.labels[idx], scores, t.threshold, params.evaluate.worst_per_method)
        every_fp, every_miss = select_mistakes(result.labels[idx], scores, t.threshold, len(scores))
        title = (
            f"{m}: {len(fp)} of {len(every_fp)} false positives and {len(miss)} of {len(every_miss)} "
            "misses at the shipped threshold, the worst first"
        )
        norms = t.normalize(scores)
        tiles = []
        for kind, picks in (("false positive", fp), ("miss", miss)):
            for i in picks:
                row = rows.iloc[i]
                image = np.asarray(Image.open(dataset.root / row["path"]).convert("RGB"))
                if maps is not None:
                    image = overlay_heatmap(
                        image,
                        maps[i],
                        vmin=t.map_vmin,
                        vmax=t.map_vmax,
                        mask=_mask(dataset, row),
                        out_size=(MONTAGE_SIDE, MONTAGE_SIDE),
                    )
                tiles.append((image, f"{kind}: {row['defect']} {Path(row['path']).stem} ({norms[i]:.0f})"))
        save_png(mistake_montage(tiles, columns=4, title=title), reports.mistake_montage(m))
