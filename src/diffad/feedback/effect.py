"""What a retrain did with the feedback: the verdicts it used, and the false-alarm rate on the
reviewed false alarms before (the model the reviewers saw) and after (the retrained bundle).

*Before* is the decision recorded in each verdict row (score >= threshold of the bundle that made
the prediction); *after* scores the same copied images with the new bundle and the same method.
With ``feedback.good_split: train`` the new model was fitted on these images, so *after* says
whether the verdicts were learnt, not how the model generalises (use ``calibration`` for that).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from diffad.artifacts.layout import INFO_FILE, FeedbackDir
from diffad.feedback.dataset import image_verdicts
from diffad.feedback.verdicts import read_verdicts
from diffad.inference.serving import served_method


def feedback_effect(
    feedback_root: Path, category: str, bundle_dir: Path, prepared: Path
) -> dict[str, Any] | None:
    """``{"verdicts_used", "verdict_rows", "reviewed_false_alarms", "method", "before", "after",
    "images": [{"image", "score_before", "score_after", "threshold_after"}...]}``; None without
    a verdict file for ``category``."""
    store = FeedbackDir(Path(feedback_root))
    rows = read_verdicts(store.verdicts(category))
    if not rows:
        return None
    info_path = Path(prepared) / INFO_FILE
    info = json.loads(info_path.read_text()).get("feedback", {}) if info_path.is_file() else {}
    false_alarms = [
        image.latest
        for image in image_verdicts(rows)
        if image.verdict == "good" and image.latest.flagged is not None
    ]
    result: dict[str, Any] = {
        "verdict_rows": len(rows),
        "verdicts_used": int(info.get("joined", 0)),
        "reviewed_false_alarms": 0,
        "method": None,
        "before": None,
        "after": None,
        "images": [],
    }
    flagged = [row for row in false_alarms if row.flagged]
    if not flagged:
        return result
    from diffad.data.images import read_image
    from diffad.inference.predictor import Predictor

    predictor = Predictor.load(bundle_dir, device="cpu")
    method = flagged[-1].method
    if method not in predictor.methods:  # none recorded, or not in this bundle
        method = served_method(predictor.methods)
    scored = predictor.predict_batch([read_image(store.root / row.image) for row in flagged], method)
    images = [
        {
            "image": row.source_name,
            "score_before": row.score,
            "threshold_before": row.threshold,
            "norm_before": row.norm_score,
            "score_after": p.score,
            "norm_after": p.norm_score,
            "threshold_after": predictor.thresholds[method].threshold,
            "flagged_after": p.anomalous,
        }
        for row, p in zip(flagged, scored, strict=True)
    ]
    result.update(
        reviewed_false_alarms=len(flagged),
        method=method,
        before=1.0,  # every one of them was a false alarm when reviewed
        after=sum(i["flagged_after"] for i in images) / len(images),
        images=images,
    )
    return result


def effect_lines(effect: dict[str, Any] | None) -> list[str]:
    """Markdown for the retrain report."""
    if effect is None:
        return ["No reviewers' verdicts for this category."]
    lines = [
        f"Verdicts used: {effect['verdicts_used']} images joined the data "
        f"({effect['verdict_rows']} verdict rows)."
    ]
    if not effect["reviewed_false_alarms"]:
        return lines + ["No reviewed false alarms with a recorded score."]
    lines += [
        "",
        f"False-alarm rate on the {effect['reviewed_false_alarms']} reviewed false alarms "
        f"({effect['method']}): "
        f"{effect['before']:.0%} before → {effect['after']:.0%} after.",
        "",
        "| image | score before (threshold) | score after (threshold) | 0-1000 before → after |",
        "|---|---|---|---|",
    ]
    for i in effect["images"]:
        lines.append(
            f"| `{i['image']}` | {i['score_before']:.4g} ({i['threshold_before']:.4g}) | "
            f"{i['score_after']:.4g} ({i['threshold_after']:.4g}) | "
            f"{_norm(i['norm_before'])} → {i['norm_after']:.0f} |"
        )
    return lines


def _norm(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"
