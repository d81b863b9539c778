"""Review: marking an image appends one well-formed verdict row; a second mark supersedes, never deletes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from diffad.artifacts.layout import FeedbackDir, MonitoringDir
from diffad.feedback.verdicts import effective_verdicts, read_verdicts
from diffad.inference.scores_log import SCHEMA_VERSION, ScoreRow, append_scores, read_scores_log

CATEGORY = "fabric"


def _production(root: Path) -> list[Path]:
    """Three production images and the scores log rows `diffad predict` would append for them."""
    images = []
    rng = np.random.default_rng(0)
    for i, norm in enumerate((480.0, 104.0, 20.0)):
        path = root / "incoming" / f"cam1_{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path)
        images.append((path, norm))
    from diffad.feedback.store import sha256_of

    rows = [
        ScoreRow(
            schema_version=SCHEMA_VERSION,
            time=f"2026-12-01T10:0{i}:00.000000Z",
            category=CATEGORY,
            bundle_id="b0b0b0b0b0b0b0b0",
            method="ensemble",
            image=str(path),
            image_sha256=sha256_of(path),
            score=norm / 100.0,
            norm_score=norm,
            threshold=1.0,
            anomalous=norm >= 100,
            percentile=50.0,
            heatmap="",
        )
        for i, (path, norm) in enumerate(images)
    ]
    append_scores(MonitoringDir(root / "data/monitoring").scores_log(CATEGORY), rows)
    return [p for p, _ in images]


def _mark(at, verdict: str) -> None:
    at.radio(key="verdict-queue-choice").set_value(verdict)
    at.button[0].click().run()


def test_marking_appends_one_row_and_a_second_mark_supersedes(open_page, fixture_root, tmp_path) -> None:
    root = Path(shutil.copytree(fixture_root, tmp_path / "copy"))
    images = _production(root)
    at = open_page(root, "pages/review.py")
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert Path(table["image"].iloc[0]).name == images[1].name  # 104: nearest the threshold first

    at.text_input(key="reviewer").set_value("ana").run()
    _mark(at, "good")
    assert not at.exception, [e.value for e in at.exception]
    verdicts = FeedbackDir(root / "data/feedback").verdicts(CATEGORY)
    lines = verdicts.read_text().splitlines()
    assert len(lines) == 1
    (row,) = read_verdicts(verdicts)  # schema-checked on read
    assert (row.reviewer, row.verdict, row.score, row.threshold) == ("ana", "good", 1.04, 1.0)
    assert row.source_name == str(images[1])
    copy = root / "data/feedback" / row.image
    assert copy.read_bytes() == images[1].read_bytes()

    at = open_page(root, "pages/review.py", reviewer="ana")
    at.toggle[0].set_value(True).run()  # the reviewed image is hidden unless asked for
    _mark(at, "defect")
    rows = read_verdicts(verdicts)
    assert verdicts.read_text().splitlines()[0] == lines[0]  # the first row is untouched
    assert [r.verdict for r in rows] == ["good", "defect"]
    (effective,) = [v for _, v in effective_verdicts(rows).values()]
    assert effective.verdict == "defect" and effective.image_sha256 == row.image_sha256
    assert len(read_scores_log(MonitoringDir(root / "data/monitoring").scores_log(CATEGORY))) == 3


def test_saving_without_a_reviewer_name_writes_nothing(open_page, fixture_root, tmp_path) -> None:
    root = Path(shutil.copytree(fixture_root, tmp_path / "copy"))
    _production(root)
    at = open_page(root, "pages/review.py")
    _mark(at, "good")
    assert any("Reviewer" in e.value for e in at.error)
    assert not FeedbackDir(root / "data/feedback").verdicts(CATEGORY).exists()


def test_the_heatmap_gallery_marks_the_prepared_test_image(open_page, fixture_root, tmp_path) -> None:
    root = Path(shutil.copytree(fixture_root, tmp_path / "copy"))
    at = open_page(root, "pages/heatmaps.py", reviewer="bo")
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox[0].select("ensemble").run()  # the verdict records the method the reviewer looked at
    picked = at.selectbox(key="mark-image")
    at.radio(key="verdict-gallery-choice").set_value("defect")
    at.text_input(key="verdict-gallery-type").set_value("scratch")
    [b for b in at.button if b.label == "Save verdict"][0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    (row,) = read_verdicts(FeedbackDir(root / "data/feedback").verdicts(CATEGORY))
    shown = row.source_name.removeprefix("data/prepared/")
    assert picked.format_func(picked.value) == shown
    assert (row.reviewer, row.verdict, row.defect_type, row.method) == ("bo", "defect", "scratch", "ensemble")
    assert (root / "data/feedback" / row.image).read_bytes() == (root / "data/prepared" / shown).read_bytes()


def test_no_verdict_is_preselected(open_page, fixture_root, tmp_path) -> None:
    root = Path(shutil.copytree(fixture_root, tmp_path / "copy"))
    _production(root)
    at = open_page(root, "pages/review.py", reviewer="ana")
    assert at.radio(key="verdict-queue-choice").value is None
    [b for b in at.button if b.label == "Save verdict"][0].click().run()
    assert any("Choose a verdict" in e.value for e in at.error)
    assert not FeedbackDir(root / "data/feedback").verdicts(CATEGORY).exists()
