"""Review queue: production images (the scores log) whose decision is least certain, first.

Uncertainty is the distance of the normalised score from the decision threshold (100 on the
0-1000 scale): images just over or under it are where a reviewer's verdict teaches the next model
most. Each image is shown once, at its latest score; images this reviewer already marked are
hidden unless asked for.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import data, review, ui
from diffad.feedback.store import ReviewedPrediction

QUEUE_SHOWN = 50
DISTANCE = "distance to threshold"  # |score - 100| on the 0-1000 scale: small = uncertain


def queue(log: pd.DataFrame, reviewed: dict[str, str], include_reviewed: bool) -> pd.DataFrame:
    """Latest row per image, most uncertain first: the smallest distance to the threshold."""
    latest = log.sort_values("time", kind="stable").drop_duplicates("image_sha256", keep="last").copy()
    latest[DISTANCE] = (latest["norm_score"] - data.NORM_THRESHOLD).abs()
    latest["your verdict"] = [reviewed.get(sha, "") for sha in latest["image_sha256"]]
    if not include_reviewed:
        latest = latest[latest["your verdict"] == ""]
    return latest.sort_values([DISTANCE, "time"], kind="stable").reset_index(drop=True)


st.title("Review queue")
cat, log_path, log = ui.production_scores()
name = review.reviewer()
include = st.toggle("Include images you already reviewed")
table = queue(log, review.reviewed_by(cat.name, name) if name else {}, include)
st.caption(
    f"{len(table)} images to review of {log['image_sha256'].nunique()} scored ({len(log)} decisions in "
    f"`{log_path.relative_to(data.project_root())}`) · most uncertain first: the smallest distance "
    "to the threshold, |score − 100| on the 0–1000 scale"
)
if table.empty:
    st.success("Nothing left to review.")
    st.stop()
shown = table.head(QUEUE_SHOWN)
st.dataframe(
    shown[["image", "method", "norm_score", "anomalous", DISTANCE, "time", "your verdict"]],
    hide_index=True,
    width="stretch",
)
labels = [
    f"{i + 1}. {Path(p).name} (score {s:.0f})"
    for i, (p, s) in enumerate(zip(shown["image"], shown["norm_score"], strict=True))
]
pick = st.selectbox("Image", range(len(shown)), format_func=labels.__getitem__)
row = shown.iloc[int(pick)]
image = data.project_root() / row["image"]  # absolute in logs `diffad predict` writes
left, right = st.columns(2)
if image.is_file():
    left.image(str(image), caption=f"{image.name}", width="stretch")
else:
    left.warning(f"`{image}` is gone; it can be reviewed only while the file exists.")
heat = data.project_root() / row["heatmap"] if row["heatmap"] else None
if heat is not None and heat.is_file():
    right.image(str(heat), caption=f"{row['method']} anomaly map", width="stretch")
decision = "anomalous" if row["anomalous"] else "normal"
st.markdown(
    f"**{decision}**, score {row['norm_score']:.0f} "
    f"(raw {row['score']:.5g}, threshold {row['threshold']:.5g})"
)


def _mask():  # the map at the bundle's pixel threshold: scored live, only when a mask is accepted
    if cat.bundle is None:
        return None
    from diffad.data.images import read_image

    predictor = data.load_predictor(cat.bundle)
    picture = read_image(image)
    prediction = predictor.predict(picture, str(row["method"]))
    make = review.heatmap_mask(
        prediction.heatmap,
        predictor.thresholds[str(row["method"])].pixel_threshold,
        picture.size,
        predictor.meta["transform"],
    )
    return None if make is None else make()


if image.is_file():
    review.verdict_controls(
        "queue",
        category=cat.name,
        image=image,
        source_name=str(row["image"]),
        prediction=ReviewedPrediction(
            bundle_id=str(row["bundle_id"]),
            method=str(row["method"]),
            score=float(row["score"]),
            norm_score=float(row["norm_score"]),
            threshold=float(row["threshold"]),
        ),
        mask=_mask if cat.bundle is not None else None,
    )
