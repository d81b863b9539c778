"""The evaluation's files: metrics, per-image scores, curves, heatmap overlays, mistake montages.

Layout (see docs/architecture.md, "Reports"):
    metrics.json              {method: {image_auroc, ..., ms_per_image}}   (dvc metrics)
    metrics_per_defect.json   {method: {defect: {...}}} and the notes (skipped metrics and why)
    scores.csv                one row per test image, every method's score / norm / decision
    curves/{roc,pr,pro}.csv   long format method, x, y                     (dashboard)
    curves/{roc,pr,pro}/<method>.csv   x, y                                 (dvc plots)
    curves/*.png              the same, rendered offline with vl-convert
    heatmaps/<method>/<defect>/<stem>.png, heatmaps/<method>/maps.npy (float16, scores.csv order)
    mistakes/<method>.png     worst false positives and misses
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from PIL import Image

from diffad.config import Params
from diffad.data.dataset import PreparedDataset
from diffad.evaluation.thresholds import calibration_figures
from diffad.metrics import curves
from diffad.viz.heatmap import overlay_heatmap, save_png
from diffad.viz.montage import mistake_montage, select_mistakes

if TYPE_CHECKING:
    from diffad.evaluation.evaluate import Evaluation

log = logging.getLogger(__name__)

OVERLAY_MAX_SIDE = 512  # overlays are drawn at the source resolution, capped here


def write_reports(result: Evaluation, dataset: PreparedDataset, params: Params, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    metrics = {
        m: {
            **r["overall"],
            **calibration_figures(result.thresholds[m].operating_point),
            "ms_per_image": round(result.ms_per_image[m], 3),
        }
        for m, r in result.metrics.items()
    }
    (out / "metrics.json").write_text(json.dumps(_round(metrics), indent=2))
    per_defect = {m: r["per_defect"] for m, r in result.metrics.items()}
    notes = sorted({n for r in result.metrics.values() for n in r["notes"]})
    (out / "metrics_per_defect.json").write_text(
        json.dumps(_round({"methods": per_defect, "notes": notes}), indent=2)
    )
    scores = _scores_table(result, dataset)
    scores.to_csv(out / "scores.csv", index=False)
    _write_curves(result, dataset, out / "curves")
    _write_heatmaps(result, dataset, params, out / "heatmaps")
    _write_mistakes(result, dataset, params, out / "mistakes")
    log.info("reports written to %s", out)


def _round(obj):
    if isinstance(obj, float):
        return round(obj, 6)
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round(v) for v in obj]
    return obj


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


def _write_curves(result: Evaluation, dataset: PreparedDataset, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    idx = _labelled(result)
    labels, masks = result.labels[idx], result.masks
    frames: dict[str, list[pd.DataFrame]] = {"roc": [], "pr": [], "pro": []}
    for m, output in result.outputs.items():
        maps = None if output.maps is None else output.maps[idx]
        for name, frame in curves(labels, output.scores[idx], masks, maps).items():
            frames[name].append(frame[["x", "y"]].assign(method=m)[["method", "x", "y"]])
    for name, parts in frames.items():
        table = pd.concat(parts) if parts else pd.DataFrame(columns=["method", "x", "y"])
        table.to_csv(out / f"{name}.csv", index=False)  # long format, for the dashboard
        (out / name).mkdir(exist_ok=True)
        for method, group in table.groupby("method"):  # one file per method: DVC overlays them
            group[["x", "y"]].to_csv(out / name / f"{method}.csv", index=False)
        _render_png(table, name, out / f"{name}.png")


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


def _original(dataset: PreparedDataset, row: pd.Series) -> tuple[np.ndarray, tuple[int, int]]:
    """The prepared image (H, W, 3) and the overlay size: the source's, capped."""
    image = np.asarray(Image.open(dataset.root / row["path"]).convert("RGB"))
    side = image.shape[0]
    source = Path(str(row.get("source_path", "")))
    if source.is_file():
        try:
            with Image.open(source) as src:
                side = min(src.size)
        except OSError:
            pass
    side = int(min(max(side, image.shape[0]), OVERLAY_MAX_SIDE))
    return image, (side, side)


def _mask(dataset: PreparedDataset, row: pd.Series) -> np.ndarray | None:
    mask_path = row.get("mask_path")
    if not isinstance(mask_path, str) or not mask_path:
        return None
    return np.asarray(Image.open(dataset.root / mask_path)) > 0


def _write_heatmaps(result: Evaluation, dataset: PreparedDataset, params: Params, out: Path) -> None:
    rows = dataset.manifest.iloc[result.test_rows]
    order = np.argsort(-np.abs(result.labels), kind="stable")[: params.evaluate.max_overlays]
    with_maps = {m: o for m, o in result.outputs.items() if o.maps is not None}
    for m, output in with_maps.items():
        (out / m).mkdir(parents=True, exist_ok=True)
        np.save(out / m / "maps.npy", output.maps.astype(np.float16))
    for i in order:  # each image, its size and its mask read once, drawn for every method
        row = rows.iloc[i]
        image, size = _original(dataset, row)
        mask = _mask(dataset, row)
        for m, output in with_maps.items():
            t = result.thresholds[m]
            overlay = overlay_heatmap(
                image, output.maps[i], vmin=t.map_vmin, vmax=t.map_vmax, mask=mask, out_size=size
            )
            save_png(overlay, out / m / row["defect"] / f"{Path(row['path']).stem}.png")


def _write_mistakes(result: Evaluation, dataset: PreparedDataset, params: Params, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    idx = _labelled(result)
    rows = dataset.manifest.iloc[result.test_rows[idx]]
    for m, output in result.outputs.items():
        t = result.thresholds[m]
        scores = output.scores[idx]
        maps = None if output.maps is None else output.maps[idx]
        fp, miss = select_mistakes(result.labels[idx], scores, t.threshold, params.evaluate.worst_per_method)
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
                        out_size=(128, 128),
                    )
                tiles.append((image, f"{kind}: {row['defect']} {Path(row['path']).stem} ({norms[i]:.0f})"))
        save_png(mistake_montage(tiles, columns=4), out / f"{m}.png")
