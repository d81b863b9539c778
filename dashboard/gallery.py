"""The heatmap gallery's logic: decisions and mistakes per image, filters, and the overlay images.

A *mistake* is a false positive (label ``good``, decided anomalous) or a miss (label ``anomaly``,
decided normal); ``unknown`` images are never mistakes. Overlays are blended here from the raw
maps (``maps.npy``) with the library's :func:`diffad.viz.heatmap.overlay_heatmap`, so the opacity
can change; without raw maps the gallery falls back to the PNG evaluate saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from dashboard.data import Category, display_file, heat_maps, mask_file, overlay_png
from diffad.viz.heatmap import overlay_heatmap

FALSE_POSITIVE, MISS = "false positive", "miss"
SORTS = ("score, high to low", "score, low to high", "file name")
DISPLAY_SIDE = 256  # gallery tiles are upsampled to this side (prepared images are often 64 px)


def decisions(scores: pd.DataFrame, method: str) -> pd.DataFrame:
    """Per test image: pos, path, label, defect, score, norm, anomalous, mistake ('' when right)."""
    table = scores[["pos", "path", "label", "defect"]].copy()
    table["score"] = scores[f"{method}_score"].astype(float)
    table["norm"] = scores[f"{method}_norm"].astype(float) if f"{method}_norm" in scores else np.nan
    table["anomalous"] = scores[f"{method}_anomalous"].astype(bool)
    label = table["label"].astype(str)
    table["mistake"] = np.select(
        [(label == "good") & table["anomalous"], (label == "anomaly") & ~table["anomalous"]],
        [FALSE_POSITIVE, MISS],
        default="",
    )
    return table


def select(
    table: pd.DataFrame,
    *,
    defects: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    only_mistakes: bool = False,
    sort: str = SORTS[0],
) -> pd.DataFrame:
    """Rows of :func:`decisions` kept by the filters (None = no filter), in the chosen order."""
    keep = pd.Series(True, index=table.index)
    if defects is not None:
        keep &= table["defect"].astype(str).isin(list(defects))
    if labels is not None:
        keep &= table["label"].astype(str).isin(list(labels))
    if only_mistakes:
        keep &= table["mistake"] != ""
    rows = table[keep]
    if sort == SORTS[2]:
        return rows.sort_values("path", kind="stable")
    return rows.sort_values("score", ascending=sort == SORTS[1], kind="stable")


def caption(row: pd.Series) -> str:
    """'defect/stem · label · score 123 → anomalous ✗ false positive' (score: the norm, threshold 100)."""
    score = f"{row['norm']:.0f}" if np.isfinite(row["norm"]) else f"{row['score']:.4g}"
    verdict = "anomalous" if row["anomalous"] else "normal"
    flag = f" ✗ {row['mistake']}" if row["mistake"] else ""
    return f"{row['defect']}/{Path(str(row['path'])).stem} · {row['label']} · score {score} → {verdict}{flag}"


@st.cache_data(show_spinner=False, max_entries=512)
def _blend(
    image: str,
    mask: str | None,
    maps_path: str,
    stamp: int,
    pos: int,
    vmin: float,
    vmax: float,
    alpha: float,
    side: int,
) -> np.ndarray:
    maps = np.load(maps_path, mmap_mode="r", allow_pickle=False)
    rgb = np.asarray(Image.open(image).convert("RGB"))
    gt = None if mask is None else np.asarray(Image.open(mask).convert("L")) > 127
    return overlay_heatmap(
        rgb,
        np.asarray(maps[pos], np.float32),
        vmin=vmin,
        vmax=vmax,
        alpha=alpha,
        mask=gt,
        out_size=(side, side),
    )


def tile(
    cat: Category,
    method: str,
    row: pd.Series,
    *,
    n_test: int,
    alpha: float,
    value_range: tuple[float, float] | None,
) -> np.ndarray | Path | None:
    """The image to show for one row: blended from raw maps (when ``value_range`` is given and the
    maps and the prepared image exist), else evaluate's overlay PNG, else the plain image."""
    original = display_file(cat, row["path"])  # the display copy: the source's resolution, capped
    if value_range is not None and original is not None and heat_maps(cat, method, n_test) is not None:
        maps_path = cat.files.maps(method)
        mask = mask_file(cat, row["defect"], row["path"])
        side = max(DISPLAY_SIDE, Image.open(original).size[0])
        try:
            return _blend(
                str(original),
                None if mask is None else str(mask),
                str(maps_path),
                maps_path.stat().st_mtime_ns,
                int(row["pos"]),
                value_range[0],
                value_range[1],
                float(alpha),
                side,
            )
        except (OSError, ValueError):  # a damaged file: fall back to what else is there
            pass
    return overlay_png(cat, method, row["defect"], row["path"]) or original
