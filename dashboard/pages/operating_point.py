"""Operating point: move a method's threshold and see, live, what it does; save it to params.yaml.

False-alarm rate on the calibration images (good images no model was fitted on: what a line will
see), miss rate and confusion matrix on the labelled test images, and the test images that change
side. Decisions use the bundle's rule (``MethodThresholds.decide``); saving writes the policy and its
value into params.yaml, so the next `dvc repro` ships it and dvc.lock records it.
"""

from __future__ import annotations

import dataclasses

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from dashboard import data, params_file, ui
from diffad.artifacts.layout import BundleDir
from diffad.evaluation.thresholds import false_alarm_threshold, false_alarm_upper_bound
from diffad.inference.decision import MethodThresholds
from diffad.inference.serving import served_method
from diffad.metrics.normalize import ScoreNormalizer

SHOWN_CHANGES = 12  # thumbnails of images that change side


def _rate(part: int, whole: int) -> str:
    return "–" if whole == 0 else f"{part / whole:.1%} ({part}/{whole})"


def score_chart(calibration: np.ndarray, scores: pd.DataFrame, method: str, chosen: float) -> alt.LayerChart:
    """Score histograms of the calibration, good test and defective test images; the threshold as a rule."""
    frame = pd.concat(
        [
            pd.DataFrame({"score": calibration, "images": "calibration (good)"}),
            pd.DataFrame(
                {"score": scores[f"{method}_score"], "images": "test " + scores["label"].astype(str)}
            ),
        ]
    )
    frame = frame[frame["images"] != "test unknown"]
    bars = (
        alt.Chart(frame)
        .mark_bar(opacity=0.55)
        .encode(
            x=alt.X("score:Q", bin=alt.Bin(maxbins=40), title=f"{method} score (raw)"),
            y=alt.Y("count():Q", stack=None, title="images"),
            color=alt.Color("images:N", title=None),
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"score": [chosen]})).mark_rule(size=2, strokeDash=[6, 4]).encode(x="score:Q")
    )
    return bars + rule


def _describe(t: MethodThresholds) -> str:
    op = t.operating_point
    params = ", ".join(f"{k} = {v:g}" for k, v in op.parameters.items())
    return (
        f"Shipped: policy **{op.policy}** ({params}), raw threshold **{t.threshold:.5g}**; "
        f"{op.calibration_alarms} of {op.calibration_images} calibration images flagged "
        f"(false-alarm rate {op.false_alarm_rate:.1%}, at most {op.false_alarm_rate_upper:.1%} with "
        f"{op.confidence:.0%} confidence)." + (f" {op.note}." if op.note else "")
    )


st.title("Operating point")
cat = ui.category("models/bundle/bundle.json")
if cat.bundle is None:
    ui.stop_missing(data.MissingArtifact(data.project_root() / "models" / "bundle" / "bundle.json"))
manifest = BundleDir(cat.bundle).manifest
meta = ui.need(data.read_json, manifest)
try:
    thresholds = {m: MethodThresholds.from_dict(t) for m, t in meta["thresholds"].items()}
except (KeyError, TypeError) as exc:
    st.error(
        f"`{manifest}` has no calibration operating point ({exc}); it was written by an "
        "older diffad. Rebuild it with `dvc repro`."
    )
    st.stop()
scores = ui.need(data.read_scores, cat)
methods = [m for m in meta.get("methods", thresholds) if m in thresholds and f"{m}_score" in scores.columns]
if not methods:
    st.warning("The bundle and reports/scores.csv share no method; run `dvc repro`.")
    st.stop()
method = st.selectbox("Method", methods, index=methods.index(served_method(methods)))
t = thresholds[method]
st.markdown(_describe(t))

calibration = np.asarray(t.good_scores, np.float64)
test_scores = scores[f"{method}_score"].to_numpy(np.float64)
labelled = scores["label"].isin(["good", "anomaly"]).to_numpy()
is_bad = (scores["label"] == "anomaly").to_numpy()
low, high = float(min(calibration.min(), test_scores.min())), float(max(calibration.max(), test_scores.max()))
span = high - low or 1.0
reference = ScoreNormalizer.from_dict(t.reference_normalizer)
chosen = st.slider(
    "Threshold (raw score; flagged when score ≥ threshold)",
    min_value=low - 0.05 * span,
    max_value=high + 0.05 * span,
    value=float(np.clip(t.threshold, low - 0.05 * span, high + 0.05 * span)),
    step=span / 1000,
    format="%.5g",
    key=f"threshold_{method}",
)
moved = dataclasses.replace(t, threshold=chosen)
shipped_flags, flags = t.decide(test_scores), moved.decide(test_scores)
alarms = int(np.count_nonzero(moved.decide(calibration)))
n_cal = calibration.size

# ---- live figures at the chosen threshold
first, second, third, fourth = st.columns(4)
first.metric(
    "False-alarm rate, calibration",
    _rate(alarms, n_cal),
    help=f"at most {false_alarm_upper_bound(alarms, n_cal):.1%} on new good images (95 % Clopper-Pearson)",
)
good_test, bad_test = labelled & ~is_bad, is_bad
tp, fp = int(np.count_nonzero(flags & bad_test)), int(np.count_nonzero(flags & good_test))
fn, tn = int(bad_test.sum()) - tp, int(good_test.sum()) - fp
second.metric("False-alarm rate, test", _rate(fp, fp + tn))
third.metric("Miss rate, test", _rate(fn, fn + tp))
fourth.metric(
    "Score on the reference scale",
    f"{float(reference(np.array([chosen]))[0]):.1f}",
    help="0-1000; 100 is the threshold of the target false-alarm rate on the calibration images",
)
st.caption(
    "Calibration images are good images no model was fitted on: their false-alarm rate is what a line "
    "will see. Choosing by the test miss rate tunes on the test set, so the test figures of the next run "
    "become optimistic."
)
st.altair_chart(score_chart(calibration, scores, method, chosen), width="stretch")
left, right = st.columns([1, 2])
left.markdown("**Confusion matrix (labelled test images)**")
left.table(
    pd.DataFrame(
        [[tn, fp], [fn, tp]], index=["good", "anomaly"], columns=["predicted normal", "predicted anomalous"]
    )
)

# ---- images that change side
changed = np.flatnonzero(flags != shipped_flags)
with right:
    st.markdown(f"**Test images that change side: {changed.size}** (vs the shipped threshold)")
    if changed.size:
        rows = scores.iloc[changed]
        st.dataframe(
            pd.DataFrame(
                {
                    "image": rows["path"],
                    "label": rows["label"],
                    "defect": rows["defect"],
                    "score": rows[f"{method}_score"],
                    "now": np.where(flags[changed], "anomalous", "normal"),
                }
            ),
            hide_index=True,
        )
        files = [(data.prepared_file(cat, p), p) for p in rows["path"].iloc[:SHOWN_CHANGES]]
        files = [(f, p) for f, p in files if f is not None]
        if files:
            st.image([str(f) for f, _ in files], caption=[p.rsplit("/", 2)[-2] for _, p in files], width=96)

with st.expander("Every test image's decision"):
    st.dataframe(
        pd.DataFrame(
            {
                "image": scores["path"],
                "label": scores["label"],
                "score": test_scores,
                "shipped": shipped_flags,
                "at this threshold": flags,
            }
        ),
        hide_index=True,
    )

# ---- save into params.yaml
st.subheader("Ship this threshold")
rate = alarms / n_cal if n_cal else 0.0
rederived = false_alarm_threshold(calibration, rate)
shipped_rate = t.operating_point.parameters.get("target_false_alarm_rate")
if shipped_rate is not None and false_alarm_threshold(calibration, shipped_rate) == rederived:
    rate = shipped_rate  # the shipped target gives the same threshold: saving it changes nothing
fixed = round(float(reference(np.array([chosen]))[0]), 3)
st.markdown(
    f"- **as a target false-alarm rate** `{rate:.4g}`: re-derived from the calibration images on every "
    f"run (here: raw threshold {rederived:.5g}); survives retraining.\n"
    f"- **as a fixed score** `{fixed:g}` on the reference scale: this exact threshold while the models "
    "stay the same; every method gets the same reference-scale score."
)
path = data.project_root() / "params.yaml"
loaded_key = f"params-read:{path}"  # what the page read: a save refuses a file edited since
if path.is_file() and loaded_key not in st.session_state:
    st.session_state[loaded_key] = params_file.fingerprint(path.read_text())
save_rate, save_fixed = st.columns(2)
updates = None
if save_rate.button("Save as target false-alarm rate", disabled=not path.is_file()):
    updates = {"evaluate.threshold_policy": "false_alarm_rate", "evaluate.target_false_alarm_rate": rate}
if save_fixed.button("Save as fixed score", disabled=not path.is_file() or fixed <= 0):
    updates = {"evaluate.threshold_policy": "fixed_score", "evaluate.fixed_score": fixed}
if updates:
    try:
        written = params_file.set_params(path, updates, loaded=st.session_state.get(loaded_key))
    except (OSError, ValueError) as exc:
        st.session_state.pop(loaded_key, None)  # re-read on the next run: the user has seen why
        st.error(f"`{path}` was not changed: {exc}")
    else:
        st.session_state[loaded_key] = params_file.fingerprint(written)
        shown = ", ".join(f"`{k}: {v}`" for k, v in updates.items())
        st.success(f"Wrote {shown} into `{path}`. Run `dvc repro` to ship it (dvc.lock records it).")
if not path.is_file():
    st.caption(f"No `{path}` here: saving needs the project folder (`DIFFAD_ROOT`).")
