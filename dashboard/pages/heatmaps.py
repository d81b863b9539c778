"""Heatmaps: the test images with their anomaly map, ground-truth contour, score and decision."""

from __future__ import annotations

import math
from pathlib import Path

import streamlit as st

from dashboard import data, gallery, review, ui
from diffad.artifacts.layout import REPORTS, ReportsDir
from diffad.feedback.store import ReviewedPrediction
from diffad.inference.serving import served_method
from diffad.viz.heatmap import colorbar

COLORBAR_HEIGHT = 240

PER_PAGE = 24
COLUMNS = 4

st.title("Heatmaps")
cat = ui.category(str(ReportsDir(Path(REPORTS)).scores))
scores = ui.need(data.read_scores, cat)
methods = data.score_methods(scores)
if not methods:
    ui.stop_missing(data.MissingArtifact(cat.reports / "scores.csv", "has no <method>_score columns"))
with_maps = [m for m in methods if cat.files.maps(m).is_file() or cat.files.maps(m).parent.is_dir()]
default = served_method(with_maps) if with_maps else methods[0]

left, right = st.columns([1, 2])
method = left.selectbox("Method", methods, index=methods.index(default))
label_names = sorted(scores["label"].astype(str).unique())
labels = right.pills("Label", label_names, selection_mode="multi", default=label_names)
# Pills on a full-width row: every defect type stays visible (a narrow multiselect hid its chips).
defect_names = sorted(scores["defect"].astype(str).unique())
defects = st.pills("Defect type", defect_names, selection_mode="multi", default=defect_names)
left, middle, right = st.columns(3)
sort = left.selectbox("Sort by", gallery.SORTS)
only_mistakes = middle.toggle("Only mistakes (false positives and misses)")
maps = data.heat_maps(cat, method, len(scores))
can_blend = maps is not None and cat.prepared is not None
alpha = right.slider(
    "Heatmap opacity",
    0.0,
    1.0,
    0.5,
    0.05,
    disabled=not can_blend,
    help="Blends the raw anomaly map (reports/heatmaps/<method>/maps.npy) over the image.",
)

if method not in with_maps:
    st.info(
        f"**{method}** gives an image score only (no anomaly map): the images are shown with their scores."
    )
elif not can_blend:
    st.caption(
        "Showing the overlays evaluate saved; the opacity slider needs "
        f"`{cat.files.maps(method).relative_to(cat.reports.parent)}` (one map per test image) "
        "and `data/prepared/`."
    )

table = gallery.decisions(scores, method)
rows = gallery.select(table, defects=defects, labels=labels, only_mistakes=only_mistakes, sort=sort)
n_fp, n_miss = (table["mistake"] == gallery.FALSE_POSITIVE).sum(), (table["mistake"] == gallery.MISS).sum()
n_unknown = int((table["label"].astype(str) == "unknown").sum())
why = (
    f" ({len(table) - n_unknown} labelled + {n_unknown} unlabelled: shown and scored, but without ground "
    "truth they are in no metric and never a mistake)"
    if n_unknown
    else ""
)
st.caption(
    f"{len(rows)} of {len(table)} test images shown{why} · {method}: {n_fp} false positives, "
    f"{n_miss} misses · score normalized to [0, 1000], decision threshold 100 · cyan outline: ground truth"
)
if rows.empty:
    st.info("No image matches the filters.")
    st.stop()

pages = math.ceil(len(rows) / PER_PAGE)
page = st.number_input(f"Page (of {pages})", 1, pages, 1) if pages > 1 else 1
rows = rows.iloc[(page - 1) * PER_PAGE : page * PER_PAGE]
good = tuple(int(p) for p in table.loc[table["label"] == "good", "pos"])
value_range = data.map_range(cat, method, good) if can_blend else None
if cat.bundle is not None:  # the bundle's range puts the pixel threshold mid-scale (what the bar says)
    with st.sidebar:
        st.image(
            colorbar(COLORBAR_HEIGHT),
            caption="Pixel score on the 0–1000 scale: 100 = pixel threshold (line), 0 = a typical good pixel",
        )
for start in range(0, len(rows), COLUMNS):
    for column, (_, row) in zip(
        st.columns(COLUMNS), rows.iloc[start : start + COLUMNS].iterrows(), strict=False
    ):
        image = gallery.tile(cat, method, row, n_test=len(scores), alpha=alpha, value_range=value_range)
        if image is None:
            column.caption(f"{gallery.caption(row)} (image file not found)")
        else:
            column.image(
                str(image) if isinstance(image, Path) else image,
                caption=gallery.caption(row),
                width="stretch",
                output_format="PNG",
            )  # PNG keeps the 1-px contour crisp

# Review: mark one image of this page (data/feedback/<category>.jsonl; the Review queue does the same
# for production images).
with st.expander("Mark an image of this page (defect / good / unsure)"):
    review.reviewer()
    choice = st.selectbox(
        "Image", list(rows.index), format_func=lambda i: str(rows.loc[i, "path"]), key="mark-image"
    )
    picked = rows.loc[choice]
    picked_file = data.prepared_file(cat, str(picked["path"]))
    bundle, threshold, pixel_threshold, transform = review.bundle_context(cat.bundle, method)
    if picked_file is None:
        st.warning("The prepared image is not on disk (data/prepared); run `dvc repro` to mark it.")
    else:
        heat = None if maps is None else maps[int(picked["pos"])].astype("float32")
        size = (int(heat.shape[1]), int(heat.shape[0])) if heat is not None else (0, 0)
        review.verdict_controls(
            "gallery",
            category=cat.name,
            image=picked_file,
            source_name=f"data/prepared/{picked['path']}",
            prediction=ReviewedPrediction(
                bundle_id=bundle,
                method=method,
                score=float(picked["score"]),
                norm_score=None if picked["norm"] != picked["norm"] else float(picked["norm"]),
                threshold=threshold,
            ),
            mask=review.heatmap_mask(heat, pixel_threshold, size, transform),
        )
