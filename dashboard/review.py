"""The verdict controls shared by the Review queue, the Heatmaps gallery and the Inspect page.

A reviewer marks an image *defect*, *good (false alarm)* or *unsure*, optionally names the defect
type and, for a defect, accepts the thresholded heatmap as its mask. Saving calls the library's
:class:`diffad.feedback.store.FeedbackStore` (``data/feedback/<category>.jsonl``, append-only):
a second mark by the same reviewer adds a row that supersedes the first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from dashboard.data import project_root
from diffad.artifacts.layout import FEEDBACK
from diffad.core.errors import DiffadError
from diffad.feedback.store import FeedbackStore, ReviewedPrediction
from diffad.feedback.verdicts import VERDICTS, effective_verdicts

REVIEWER_KEY = "reviewer"
LABELS = {"defect": "defect", "good": "good (false alarm)", "unsure": "unsure"}
MaskMaker = Callable[[], Image.Image | None]  # the thresholded heatmap at the image's size


def store() -> FeedbackStore:
    return FeedbackStore(project_root() / FEEDBACK)


def reviewer() -> str:
    """The reviewer's name, asked once in the sidebar and kept for the session."""
    return st.sidebar.text_input(
        "Reviewer", key=REVIEWER_KEY, help="recorded with every verdict (data/feedback/<category>.jsonl)"
    ).strip()


def reviewed_by(category: str, name: str) -> dict[str, str]:
    """image sha256 -> this reviewer's effective verdict."""
    rows = store().read(category)
    return {sha: row.verdict for (who, sha), (_, row) in effective_verdicts(rows).items() if who == name}


def verdict_controls(
    key: str,
    *,
    category: str,
    image: Path,
    source_name: str,
    prediction: ReviewedPrediction,
    mask: MaskMaker | None = None,
) -> None:
    """Mark ``image``: verdict, defect type, optional mask, Save. ``key`` keeps widgets apart.

    The page calls :func:`reviewer` once (the sidebar field) before this."""
    name = str(st.session_state.get(REVIEWER_KEY) or "").strip()
    with st.form(f"verdict-{key}", clear_on_submit=False, border=True):
        verdict = st.radio(  # no default: a verdict is a decision, never a click-through
            "Verdict",
            VERDICTS,
            format_func=LABELS.get,
            horizontal=True,
            key=f"verdict-{key}-choice",
            index=None,
        )
        defect_type = st.text_input(
            "Defect type (defect only)", key=f"verdict-{key}-type", placeholder="e.g. scratch"
        )
        use_mask = st.checkbox(
            "Accept the thresholded heatmap as the defect's mask",
            key=f"verdict-{key}-mask",
            disabled=mask is None,
            help="pixels over the bundle's pixel threshold; unticked: the defect is saved without a mask",
        )
        saved = st.form_submit_button("Save verdict", type="primary")
    if not saved:
        return
    if not name:
        st.error("Enter your name as **Reviewer** in the sidebar first: every verdict records who decided.")
        return
    if verdict is None:
        st.error("Choose a verdict: defect, good (false alarm) or unsure.")
        return
    try:
        accepted = mask() if (use_mask and verdict == "defect" and mask is not None) else None
        row = store().record(
            category,
            reviewer=name,
            verdict=verdict,
            image=image,
            source_name=source_name,
            defect_type=defect_type.strip() or None if verdict == "defect" else None,
            mask=accepted,
            prediction=prediction,
        )
    except DiffadError as exc:
        st.error(str(exc))
        return
    extra = f", mask {row.mask}" if row.mask else ""
    st.success(f"Saved: **{LABELS[row.verdict]}** by {row.reviewer} at {row.time}{extra}.")


def heatmap_mask(
    heatmap: np.ndarray | None, pixel_threshold: float | None, size, transform
) -> MaskMaker | None:
    """A mask maker from a raw ``(R, R)`` map and the bundle's pixel threshold (None when either is
    missing or nothing is over it)."""
    if heatmap is None or pixel_threshold is None:
        return None
    over = np.asarray(heatmap) >= pixel_threshold
    if not over.any():
        return None
    from diffad.feedback.store import mask_to_source

    return lambda: mask_to_source(over, size, transform)


def bundle_context(bundle: Path | None, method: str) -> tuple[str | None, float | None, float | None, str]:
    """(bundle id, raw threshold, pixel threshold, transform) of ``method`` in a bundle folder."""
    from diffad.artifacts.layout import BundleDir
    from diffad.artifacts.runs import read_bundle_manifest
    from diffad.core.errors import ArtifactError
    from diffad.inference.scores_log import bundle_id

    if bundle is None:
        return None, None, None, "center-crop-dhariwal"
    try:
        meta = read_bundle_manifest(BundleDir(bundle))
    except (ArtifactError, OSError, ValueError):
        return None, None, None, "center-crop-dhariwal"
    t = (meta.get("thresholds") or {}).get(method) or {}
    return bundle_id(bundle), t.get("threshold"), t.get("pixel_threshold"), str(meta.get("transform"))


def keep_upload(name: str, payload: bytes) -> Path:
    """An uploaded file on disk (a session temp folder), so the store can copy it like any image."""
    import hashlib
    import tempfile

    folder = Path(tempfile.gettempdir()) / "diffad-uploads"
    folder.mkdir(exist_ok=True)
    path = folder / f"{hashlib.sha256(payload).hexdigest()}{Path(name).suffix.lower() or '.png'}"
    if not path.is_file():
        path.write_bytes(payload)
    return path
