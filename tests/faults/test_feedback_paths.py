"""Paths taken from verdict rows stay inside data/feedback/ (issue 21, cases 7 and 11): a link out
of ``images/`` never joins the training data; a row naming a reserved defect folder, another
category or a mask that is not an accepted mask is one error naming ``file:line``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from diffad.feedback.dataset import FeedbackInput
from diffad.feedback.store import FeedbackStore, mask_to_source
from diffad.feedback.verdicts import FeedbackError
from tests.faults.conftest import Raw, noise, save
from tests.unit.feedback.test_feedback_dataset import manifest, run


@pytest.fixture
def project(tmp_path: Path):
    raw = Raw(tmp_path)
    return raw.params(raw.tree(train=6, test_good=2, defects=2)), tmp_path


def test_a_link_out_of_the_feedback_images_never_joins_train(project):
    params, tmp = project
    image = save(noise(400, (20, 20)), tmp / "incoming" / "x.png")
    row = FeedbackStore(tmp / "feedback").record("tiny", reviewer="ana", verdict="good", image=image)
    copy = tmp / "feedback" / row.image
    outside = tmp / "elsewhere" / "secret.png"  # same bytes, so the row's sha256 still matches
    outside.parent.mkdir()
    shutil.copy(copy, outside)
    copy.unlink()
    copy.symlink_to(outside)
    run(params, tmp)
    assert "feedback" not in set(manifest(tmp)["origin"])
    info = json.loads((tmp / "prepared/info.json").read_text())["feedback"]
    assert info["joined"] == 0 and "leads out of" in info["left_out"][0]["reason"]


def _edited(tmp: Path, **changes) -> Path:
    """A defect verdict recorded by the dashboard's store, then one field changed by hand."""
    image = save(noise(401, (20, 20)), tmp / "incoming" / "y.png")
    mask = np.zeros((16, 16), bool)
    mask[4:9, 6:12] = True
    source_mask = mask_to_source(mask, (20, 20), "center-crop-dhariwal")
    store = FeedbackStore(tmp / "feedback")
    store.record("tiny", reviewer="ana", verdict="defect", defect_type="dent", image=image, mask=source_mask)
    path = tmp / "feedback" / "tiny.jsonl"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}) + "\n")
    return path


@pytest.mark.parametrize(
    "changes,named",
    [
        ({"defect_type": "good"}, "defect_type 'good'"),
        ({"defect_type": "unknown"}, "defect_type 'unknown'"),
        ({"category": "washer"}, "category 'washer'"),
        ({"mask": "README.md"}, "mask 'README.md'"),
    ],
)
def test_a_row_naming_a_reserved_folder_another_category_or_a_stray_mask_names_its_line(
    project, changes, named
):
    params, tmp = project
    _edited(tmp, **changes)
    with pytest.raises(FeedbackError, match=rf"tiny\.jsonl:1: {named}"):
        FeedbackInput(tmp / "feedback", "tiny").read()  # convert_dataset's reader


def test_convert_dataset_stops_at_such_a_row_and_writes_nothing(project):
    params, tmp = project
    _edited(tmp, category="washer")
    before = sorted(p.name for p in tmp.iterdir())
    with pytest.raises(FeedbackError, match=r"tiny\.jsonl:1: category 'washer'"):
        run(params, tmp)
    assert not (tmp / "prepared").exists() and sorted(p.name for p in tmp.iterdir()) == before
