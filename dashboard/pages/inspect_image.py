"""Inspect an image: upload -> score, percentile among good images, decision, heatmap, histogram."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from dashboard import data, review, ui
from dashboard.upload import MAX_MB, TYPES, read_upload
from diffad.artifacts.layout import BUNDLE, BundleDir
from diffad.feedback.store import ReviewedPrediction
from diffad.inference.serving import served_method


def histogram_domain(good: np.ndarray, score: float, threshold: float | None) -> tuple[float, float]:
    """The x range: the good scores, this image's score and the threshold, with a margin, so the
    image's rule lies inside the axis (a far-off score used to fall outside every tick)."""
    values = [float(good.min()), float(good.max()), score] + ([threshold] if threshold is not None else [])
    lo, hi = min(values), max(values)
    pad = 0.05 * (hi - lo) or 1e-6
    return lo - pad, hi + pad


def good_histogram(
    good: np.ndarray, score: float, threshold: float | None, axis: str = "anomaly score (raw)"
) -> alt.LayerChart:
    """Histogram of the calibration scores, this image's score as a labelled red rule, the
    threshold dashed; the x axis spans all three."""
    domain = histogram_domain(good, score, threshold)
    x_scale = alt.Scale(domain=list(domain), nice=False)
    bars = (
        alt.Chart(
            pd.DataFrame({"score": good.astype(float)}),
            title="Scores of the calibration images (good, held out of training)",
        )
        .mark_bar(opacity=0.7)
        .encode(
            x=alt.X(
                "score:Q",
                bin=alt.Bin(maxbins=30, extent=[float(good.min()), float(good.max())]),
                title=axis,
                scale=x_scale,
            ),
            y=alt.Y("count():Q", title="images"),
        )
    )
    label = f"this image: {score:.0f}" if abs(score) >= 10 else f"this image: {score:.4g}"
    marks = pd.DataFrame({"score": [score], "what": ["this image"], "label": [label]})
    if threshold is not None:
        marks = pd.concat(
            [marks, pd.DataFrame({"score": [threshold], "what": ["decision threshold"], "label": [""]})]
        )
    rules = (
        alt.Chart(marks)
        .mark_rule(size=3)
        .encode(
            x=alt.X("score:Q", scale=x_scale),
            color=alt.Color(
                "what:N",
                title=None,
                scale=alt.Scale(domain=["this image", "decision threshold"], range=["#d62728", "#555555"]),
            ),
            strokeDash=alt.StrokeDash(
                "what:N",
                legend=None,
                scale=alt.Scale(domain=["this image", "decision threshold"], range=[[1, 0], [6, 4]]),
            ),
        )
    )
    labels = (
        alt.Chart(marks.iloc[:1])
        .mark_text(align="left", dx=5, dy=-5, color="#d62728", fontWeight="bold")
        .encode(x=alt.X("score:Q", scale=x_scale), y=alt.value(12), text="label:N")
    )
    return bars + rules + labels


def on_headline_scale(
    predictor: object, method: str, good: np.ndarray, score: float
) -> tuple[np.ndarray, float, float | None, str]:
    """(good scores, this score, threshold, axis title) on the 0–1000 scale of the headline metric
    (threshold 100) when the bundle's thresholds can normalise, else raw."""
    normalize = getattr(getattr(predictor, "thresholds", {}).get(method), "normalize", None)
    if normalize is None:
        return good, score, threshold_of(predictor, method), "anomaly score (raw)"
    shown = np.asarray(normalize(np.append(good, score)), dtype=float)
    return shown[:-1], float(shown[-1]), data.NORM_THRESHOLD, "anomaly score (0–1000; 100 = threshold)"


def threshold_of(predictor: object, method: str) -> float | None:
    value = getattr(getattr(predictor, "thresholds", {}).get(method), "threshold", None)
    return float(value) if isinstance(value, int | float) and np.isfinite(value) else None


st.title("Inspect an image")
cat = ui.category(str(BundleDir(Path(BUNDLE)).manifest))
if cat.bundle is None:
    ui.stop_missing(data.MissingArtifact(BundleDir(data.project_root() / BUNDLE).manifest))
try:
    predictor = ui.need(data.load_predictor, cat.bundle)
except Exception as exc:  # the loader is another part's code: show its message, not a traceback
    st.error(
        f"The model bundle `{cat.bundle}` could not be loaded: {exc}\n\n"
        "Rebuild it with `dvc repro` (the evaluate stage writes models/bundle)."
    )
    st.stop()

methods = list(predictor.methods)
method = st.selectbox("Method", methods, index=methods.index(served_method(methods)))
upload = st.file_uploader(
    f"Image ({', '.join(TYPES)}; at most {MAX_MB} MB)", type=list(TYPES), max_upload_size=MAX_MB
)
if upload is None:
    st.info("Upload an image to score it with the model bundle.")
    st.stop()
image, problem = read_upload(upload.name, upload.getvalue())
if problem:
    st.error(problem)
    st.stop()
try:
    with st.spinner("Scoring…"):
        prediction = predictor.predict(image, method)
except Exception as exc:  # same reason as above
    st.error(f"Scoring `{upload.name}` with {method} failed: {exc}")
    st.stop()

score, percentile = float(prediction.score), float(prediction.percentile)
first, second, third = st.columns(3)
first.metric(
    "Anomaly score",
    f"{prediction.norm_score:.0f}",
    help=f"normalized to [0, 1000]; 100 is the decision threshold (raw score {score:.5g})",
)
second.metric(
    "Percentile among calibration images",
    f"{percentile:.1f} %",
    help="share of the calibration images (good images no model was fitted on) that score lower",
)
third.metric("Decision", "anomalous" if prediction.anomalous else "normal")
if prediction.anomalous:
    st.error(f"**Anomalous** by {method}: scores higher than {percentile:.1f} % of good images.")
else:
    st.success(f"**Normal** by {method}: scores higher than {percentile:.1f} % of good images.")

if prediction.change:  # as `diffad predict` warns
    st.warning(f"`{upload.name}`: {prediction.change} before scoring (the bundle's resolution, transform).")
left, right = st.columns(2)
left.image(image, caption=f"{upload.name} ({image.width}×{image.height})", width="stretch")
if prediction.overlay is not None:
    right.image(prediction.overlay, caption=f"{method} anomaly map", width="stretch")
elif prediction.heatmap is not None:  # no overlay: show the map itself, min-max scaled
    heat = np.asarray(prediction.heatmap, np.float32)
    span = float(heat.max() - heat.min()) or 1.0
    right.image(
        ((heat - heat.min()) / span * 255).astype(np.uint8), caption=f"{method} anomaly map", width="stretch"
    )
else:
    right.info(f"{method} gives an image score only, no anomaly map.")

good = np.asarray(predictor.good_scores(method), dtype=float)
if good.size:
    st.altair_chart(good_histogram(*on_headline_scale(predictor, method, good, score)), width="stretch")
    st.caption(
        f"The {good.size} calibration images' {method} scores (good images held out of training); "
        "red: this image; dashed: the decision threshold."
    )

# Review: mark the uploaded image (its bytes are kept under data/feedback/images/).
with st.expander("Mark this image (defect / good / unsure)"):
    review.reviewer()
    uploaded = review.keep_upload(upload.name, upload.getvalue())
    bundle, _, pixel_threshold, transform = review.bundle_context(cat.bundle, method)
    review.verdict_controls(
        "inspect",
        category=cat.name,
        image=uploaded,
        source_name=f"upload:{upload.name}",
        prediction=ReviewedPrediction(
            bundle_id=bundle,
            method=method,
            score=score,
            norm_score=float(prediction.norm_score),
            threshold=threshold_of(predictor, method),
        ),
        mask=review.heatmap_mask(prediction.heatmap, pixel_threshold, image.size, transform),
    )
