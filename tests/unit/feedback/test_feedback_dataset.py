"""Verdicts become data: convert_dataset adds confirmed images (origin = feedback) and the GX suite
checks the verdict file (known images, one effective verdict, no test image leaking into training)."""

from __future__ import annotations

from stages.convert_dataset import main as convert

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from diffad.core.errors import ValidationFailed
from diffad.feedback.store import FeedbackStore, mask_to_source
from diffad.feedback.verdicts import FeedbackError, read_verdicts
from tests.faults.conftest import Raw, noise, save


@pytest.fixture
def project(tmp_path: Path):
    raw = Raw(tmp_path)
    root = raw.tree(train=6, test_good=2, defects=2)
    return raw, root, raw.params(root), tmp_path


def run(params: Path, tmp: Path) -> None:
    convert(
        [
            "--params",
            str(params),
            "--out",
            str(tmp / "prepared"),
            "--report",
            str(tmp / "rep"),
            "--feedback",
            str(tmp / "feedback"),
        ]
    )


def manifest(tmp: Path) -> pd.DataFrame:
    return pd.read_csv(tmp / "prepared/manifest.csv", keep_default_na=False)


def failed(tmp: Path) -> dict[str, dict]:
    report = json.loads((tmp / "rep/validation.json").read_text())
    return {c["name"]: c for c in report["checks"] if not c["success"]}


def test_confirmed_images_join_train_and_test_tagged_feedback(project) -> None:
    raw, root, params, tmp = project
    run(params, tmp)
    assert set(manifest(tmp)["origin"]) == {"source"}
    store = FeedbackStore(tmp / "feedback")
    new = [save(noise(100 + i, (30, 20)), tmp / "incoming" / f"n{i}.png") for i in range(4)]
    store.record("tiny", reviewer="ana", verdict="good", image=new[0])
    store.record("tiny", reviewer="ana", verdict="unsure", image=new[1])
    mask = np.zeros((16, 16), bool)
    mask[4:9, 6:12] = True
    store.record(
        "tiny",
        reviewer="bo",
        verdict="defect",
        defect_type="dent",
        image=new[2],
        mask=mask_to_source(mask, (30, 20), "center-crop-dhariwal"),
    )
    store.record("tiny", reviewer="bo", verdict="defect", image=new[3])  # no mask on a masked source
    run(params, tmp)
    rows = manifest(tmp)
    fed = rows[rows["origin"] == "feedback"]
    assert sorted(zip(fed["split"], fed["label"], fed["defect"], strict=True)) == [
        ("test", "anomaly", "dent"),
        ("train", "good", "good"),
    ]
    dent = fed[fed["defect"] == "dent"].iloc[0]
    prepared_mask = np.asarray(Image.open(tmp / "prepared" / dent["mask_path"])) > 0
    assert prepared_mask.sum() == pytest.approx(mask.sum(), abs=6)  # back-projection round trip
    assert dent["source_path"].startswith("data/feedback/images/") or "images/" in dent["source_path"]
    info = json.loads((tmp / "prepared/info.json").read_text())["feedback"]
    assert (info["joined"], info["unsure"]) == (2, 1)
    assert "without a mask" in info["left_out"][0]["reason"]
    assert not failed(tmp)


def test_marking_a_test_image_good_fails_validation_naming_it(project) -> None:
    raw, root, params, tmp = project
    run(params, tmp)
    before = raw.digest(tmp / "prepared")
    test_image = tmp / "prepared/images/test/good/000.png"  # as the heatmap gallery marks it
    FeedbackStore(tmp / "feedback").record(
        "tiny",
        reviewer="ana",
        verdict="good",
        image=test_image,
        source_name="data/prepared/images/test/good/000.png",
    )
    with pytest.raises(ValidationFailed, match="feedback_leak") as caught:
        run(params, tmp)
    assert "tiny.jsonl:1 data/prepared/images/test/good/000.png" in str(caught.value)
    leak = failed(tmp)["feedback_leak"]
    assert leak["offending"][0]["path"] == "tiny.jsonl:1 data/prepared/images/test/good/000.png"
    assert "images/test/good/000.png" in leak["offending"][0]["value"]
    assert raw.digest(tmp / "prepared") == before  # the rejected run changed nothing


def test_a_source_test_file_marked_good_is_a_leak_too(project) -> None:
    raw, root, params, tmp = project
    FeedbackStore(tmp / "feedback").record(
        "tiny", reviewer="ana", verdict="good", image=root / "test/crack/001.png"
    )
    with pytest.raises(ValidationFailed, match="feedback_leak"):
        run(params, tmp)


def test_a_missing_or_changed_image_fails_feedback_image_known(project) -> None:
    raw, root, params, tmp = project
    image = save(noise(300, (20, 20)), tmp / "incoming/x.png")
    row = FeedbackStore(tmp / "feedback").record("tiny", reviewer="ana", verdict="good", image=image)
    (tmp / "feedback" / row.image).write_bytes(b"changed")
    with pytest.raises(ValidationFailed, match="feedback_image_known"):
        run(params, tmp)


def test_a_hand_edited_row_is_an_error_naming_the_line(project) -> None:
    raw, root, params, tmp = project
    image = save(noise(301, (20, 20)), tmp / "incoming/y.png")
    store = FeedbackStore(tmp / "feedback")
    store.record("tiny", reviewer="ana", verdict="good", image=image)
    path = tmp / "feedback/tiny.jsonl"
    row = json.loads(path.read_text())
    path.write_text(path.read_text() + json.dumps({**row, "verdict": "fine"}) + "\n")
    with pytest.raises(FeedbackError, match=r"tiny\.jsonl:2: verdict 'fine'"):
        read_verdicts(path)
    with pytest.raises(FeedbackError, match=r"tiny\.jsonl:2"):
        run(params, tmp)
