"""convert_dataset: a rejected run keeps the previous dataset; validation's weak spots (issue 11, 1 + 6)."""

from __future__ import annotations

from stages.convert_dataset import main as convert

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from diffad.core.errors import DataError, ValidationFailed


def run(raw, params, tmp_path):
    convert(["--params", str(params), "--out", str(tmp_path / "prepared"), "--report", str(tmp_path / "rep")])


def failed_checks(tmp_path) -> dict[str, dict]:
    report = json.loads((tmp_path / "rep" / "validation.json").read_text())
    return {c["name"]: c for c in report["checks"] if not c["success"]}


def test_a_rejected_run_leaves_the_previous_prepared_dataset_byte_identical(raw, tmp_path):
    root = raw.tree()
    params = raw.params(root)
    run(raw, params, tmp_path)
    before = raw.digest(tmp_path / "prepared")
    shutil.copy(root / "train/good/000.png", root / "test/good/leak.png")  # train/test leak

    with pytest.raises(ValidationFailed, match="train_test_leak"):
        run(raw, params, tmp_path)
    assert raw.digest(tmp_path / "prepared") == before
    assert "train_test_leak" in failed_checks(tmp_path)  # the rejected run's report is kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml", "prepared", "raw", "rep"]


def test_an_all_black_defect_mask_fails_validation(raw, tmp_path):
    root = raw.tree()
    raw.save(np.zeros((20, 24), np.uint8), root / "ground_truth/crack/001_mask.png")
    with pytest.raises(ValidationFailed):
        run(raw, raw.params(root), tmp_path)
    check = failed_checks(tmp_path)["mask_not_empty"]
    assert [o["path"] for o in check["offending"]] == ["images/test/crack/001.png"]


def test_no_good_test_images_fails_validation_not_evaluate(raw, tmp_path):
    root = raw.tree(test_good=0, defects=3)
    shutil.rmtree(root / "test/good", ignore_errors=True)
    with pytest.raises(ValidationFailed):
        run(raw, raw.params(root), tmp_path)
    assert "good_test_images" in failed_checks(tmp_path)


@pytest.mark.parametrize("copy", ["pixel-identical", "re-encoded"])
def test_a_test_image_that_copies_a_train_image_is_a_leak(raw, tmp_path, copy):
    root = raw.tree()
    # a smooth photo-like train image (JPEG noise on pure pixel noise would be no test)
    coarse = Image.fromarray(raw.noise(7, (6, 5)))
    source = coarse.resize((96, 80), resample=Image.Resampling.BICUBIC)
    source.save(root / "train/good/002.png")
    if copy == "pixel-identical":  # same pixels, other bytes: the file hash differs
        source.save(root / "test/good/copy.png", compress_level=0)
        name = "pixel_leak"
    else:  # a lossy re-encode: neither file nor pixel hash matches
        source.save(root / "test/good/copy.jpg", quality=90)
        name = "near_duplicate"
    with pytest.raises(ValidationFailed):
        run(raw, raw.params(root), tmp_path)
    check = failed_checks(tmp_path)[name]
    assert check["offending"][0]["path"].startswith("images/test/good/copy")
    assert check["offending"][0]["value"] == "images/train/good/002.png"


def test_a_link_out_of_the_data_folder_is_refused_unless_allowed(raw, tmp_path):
    root = raw.tree()
    outside = raw.save(raw.noise(99), tmp_path / "elsewhere" / "x.png")
    os.symlink(outside, root / "train/good/linked.png")
    with pytest.raises(DataError, match="linked.png.*outside"):
        run(raw, raw.params(root), tmp_path)
    assert not (tmp_path / "prepared").exists()
    run(raw, raw.params(root, data={"allow_external_links": True}), tmp_path)
    assert (tmp_path / "prepared/images/train/good/linked.png").is_file()


def test_a_skipped_mask_says_its_image_was_left_out(raw, tmp_path):
    root = raw.tree(defects=3)
    (root / "ground_truth/crack/001_mask.png").write_bytes(b"not a png")
    run(raw, raw.params(root, data={"on_bad_input": "skip"}), tmp_path)
    info = json.loads((tmp_path / "prepared/info.json").read_text())
    (entry,) = info["skipped"]
    assert entry["path"] == "ground_truth/crack/001_mask.png"
    assert "test/crack/001.png" in entry["reason"] and "left out" in entry["reason"]
