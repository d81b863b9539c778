"""Importers (mvtec, folder, synthetic) on small generated trees, including every kind of bad input."""

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from diffad.core.errors import ConfigError, DataError
from diffad.data.manifest import MANIFEST_COLUMNS
from diffad.data.prepare import prepare_dataset
from diffad.data.settings import ConvertDatasetSettings, DataSettings


def test_mvtec_import_writes_the_contract_layout_and_leaves_the_source_alone(trees, tmp_path):
    root = trees.make(train=3, test_good=2, defects={"crack": 2, "hole": 1}, unknown=1)
    before = trees.digest(root)
    out = tmp_path / "prepared"
    report = prepare_dataset(trees.config(root), trees.SMALL, 0, out)

    assert trees.digest(root) == before
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    keys = list(
        zip(manifest.split, manifest.defect, manifest.path.map(lambda p: p.rsplit("/", 1)[1]), strict=True)
    )
    assert keys == sorted(keys)  # sorted by split, defect, stem
    assert report.counts["images"] == len(manifest) == 9
    assert dict(manifest.groupby("label").size()) == {"anomaly": 3, "good": 5, "unknown": 1}

    anomalies = manifest[manifest.label == "anomaly"]
    assert (anomalies.mask_path == anomalies.path.str.replace("images/", "masks/", regex=False)).all()
    assert (manifest[manifest.label != "anomaly"].mask_path == "").all()
    for row in manifest.itertuples():
        image = Image.open(out / row.path)
        assert image.mode == "RGB" and image.size == (16, 16) == (row.width, row.height)
        assert (root / row.source_path).is_file()
        assert row.source_mode == "RGB"
    info = json.loads((out / "info.json").read_text())
    assert info["has_masks"] is True and info["resolution"] == 16 and info["skipped"] == []
    assert info["counts"]["train"] == 3 and info["counts"]["masks"] == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".prepared")]  # temp dirs removed


def test_folder_source_records_that_there_are_no_masks(trees, tmp_path):
    root = trees.make(defects={"seven": 2}, masks=False)
    out = tmp_path / "prepared"
    report = prepare_dataset(trees.config(root, source="folder"), trees.SMALL, 0, out)
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert report.has_masks is False
    assert json.loads((out / "info.json").read_text())["has_masks"] is False
    assert (manifest.mask_path == "").all() and not (out / "masks").exists()
    assert set(manifest[manifest.defect == "seven"].label) == {"anomaly"}


def test_mvtec_defect_folder_without_ground_truth_is_an_error(trees, tmp_path):
    root = trees.make(defects={"crack": 1}, masks=False)
    with pytest.raises(DataError, match="ground_truth/crack"):
        prepare_dataset(trees.config(root), trees.SMALL, 0, tmp_path / "out")


def test_plain_stem_mask_name_is_accepted(trees, tmp_path):
    root = trees.make(defects={"crack": 1})
    (root / "ground_truth/crack/000_mask.png").rename(root / "ground_truth/crack/000.png")
    prepare_dataset(trees.config(root), trees.SMALL, 0, tmp_path / "out")
    manifest = pd.read_csv(tmp_path / "out/manifest.csv", keep_default_na=False)
    assert manifest[manifest.defect == "crack"].mask_path.tolist() == ["masks/test/crack/000.png"]


def _zero_byte(root):
    path = root / "train/good/zero.png"
    path.write_bytes(b"")
    return path


def _truncated(root):
    path = root / "test/good/cut.png"
    data = (root / "test/good/000.png").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _corrupt(root):
    path = root / "test/crack/junk.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    return path


def _not_an_image(root):
    path = root / "train/good/notes.txt"
    path.write_text("camera settings\n")
    return path


def _mask_without_image(root):
    path = root / "ground_truth/crack/077_mask.png"
    Image.new("L", (48, 40), 255).save(path)
    return path


def _mask_of_other_size(root):
    path = root / "ground_truth/crack/001_mask.png"
    Image.new("L", (24, 20), 255).save(path)
    return path


BAD_INPUTS = {
    "zero-byte": (_zero_byte, "empty file"),
    "truncated": (_truncated, "truncated"),
    "corrupt": (_corrupt, "corrupt|not an image"),
    "non-image": (_not_an_image, "not an image"),
    "mask-without-image": (_mask_without_image, "mask without"),
    "mask-size": (_mask_of_other_size, "24x20"),
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_fails_naming_the_file(trees, tmp_path, kind):
    plant, reason = BAD_INPUTS[kind]
    root = trees.make(defects={"crack": 2})
    bad = plant(root)
    out = tmp_path / "prepared"
    with pytest.raises(DataError, match=reason) as info:
        prepare_dataset(trees.config(root), trees.SMALL, 0, out)
    assert bad.name in str(info.value)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["raw"]  # no half-written output left behind


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_is_skipped_counted_and_reported(trees, tmp_path, kind):
    plant, reason = BAD_INPUTS[kind]
    root = trees.make(defects={"crack": 2})
    bad = plant(root)
    out = tmp_path / "prepared"
    report = prepare_dataset(trees.config(root, on_bad_input="skip"), trees.SMALL, 0, out)
    info = json.loads((out / "info.json").read_text())
    assert report.counts["skipped"] == info["counts"]["skipped"] == 1
    assert info["skipped"][0]["path"] == bad.relative_to(root).as_posix()
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert bad.relative_to(root).as_posix() not in set(manifest.source_path)
    assert len(manifest) == 4 + 2 + 2 - (kind == "mask-size")  # the image of a wrong mask goes too


def test_empty_or_missing_train_good_is_an_error_even_when_skipping(trees, tmp_path):
    root = trees.make(train=1)
    (root / "train/good/000.png").write_bytes(b"")  # the only train image is unusable
    with pytest.raises(DataError, match="train/good"):
        prepare_dataset(trees.config(root, on_bad_input="skip"), trees.SMALL, 0, tmp_path / "out")
    shutil.rmtree(root / "train")
    with pytest.raises(DataError, match="train/good"):
        prepare_dataset(trees.config(root), trees.SMALL, 0, tmp_path / "out")


def test_empty_test_folder_is_an_error(trees, tmp_path):
    root = trees.make(test_good=0, defects={})
    (root / "test").mkdir()
    with pytest.raises(DataError, match="test"):
        prepare_dataset(trees.config(root, on_bad_input="skip"), trees.SMALL, 0, tmp_path / "out")


def test_missing_source_folder_names_it(tmp_path):
    with pytest.raises(DataError, match="nowhere"):
        prepare_dataset(
            DataSettings(source="mvtec", path=str(tmp_path / "nowhere")),
            ConvertDatasetSettings(),
            0,
            tmp_path / "out",
        )


def test_output_inside_the_source_is_refused(trees):
    root = trees.make()
    with pytest.raises(DataError, match="overlap"):
        prepare_dataset(trees.config(root), trees.SMALL, 0, root / "prepared")


def test_a_new_run_replaces_the_old_output_and_a_failed_one_keeps_it(trees, tmp_path):
    root = trees.make()
    out = tmp_path / "prepared"
    out.mkdir()
    (out / "stale.txt").write_text("from an older run")
    prepare_dataset(trees.config(root), trees.SMALL, 0, out)
    assert not (out / "stale.txt").exists() and (out / "manifest.csv").is_file()
    before = trees.digest(out)
    (root / "train/good/000.png").write_bytes(b"")
    with pytest.raises(DataError):
        prepare_dataset(trees.config(root), trees.SMALL, 0, out)
    assert trees.digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prepared", "raw"]


def test_every_input_mode_imports(trees, tmp_path):
    root = trees.make(train=1, test_good=0, defects={"crack": 1})
    good = root / "train/good"
    rgb = trees.noise_rgb(50)
    Image.fromarray(rgb[..., 0]).save(good / "l.png")
    Image.fromarray(rgb[..., 0]).convert("LA").save(good / "la.png")
    Image.fromarray(rgb).convert("RGBA").save(good / "rgba.png")
    Image.fromarray(rgb).convert("P").save(good / "p.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(good / "deep.png")
    Image.fromarray(rgb).convert("CMYK").save(good / "cmyk.jpg")
    Image.fromarray(rgb[..., 0] > 100).save(good / "bits.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(good / "rotated.jpg", exif=exif)
    prepare_dataset(trees.config(root), trees.SMALL, 0, tmp_path / "out")
    manifest = pd.read_csv(tmp_path / "out/manifest.csv", keep_default_na=False).set_index("source_path")
    modes = manifest.source_mode.to_dict()
    assert modes["train/good/l.png"] == "L" and modes["train/good/la.png"] == "LA"
    assert modes["train/good/rgba.png"] == "RGBA" and modes["train/good/p.png"] == "P"
    assert modes["train/good/deep.png"].startswith("I;16") and modes["train/good/cmyk.jpg"] == "CMYK"
    assert modes["train/good/bits.png"] == "1" and modes["train/good/rotated.jpg"] == "RGB"
    for path in manifest.path:
        assert Image.open(tmp_path / "out" / path).mode == "RGB"


def test_synthetic_source_builds_the_demo_and_rejects_unknown_categories(tmp_path):
    small = ConvertDatasetSettings(
        demo_train_good=3, demo_test_good=2, demo_test_per_defect=1, demo_test_unknown=2
    )
    report = prepare_dataset(DataSettings(category="washer", resolution=32), small, 7, tmp_path / "demo")
    assert report.has_masks and report.counts["train"] == 3 and report.counts["anomaly"] == 5
    assert report.counts["unknown"] == 2 and report.counts["masks"] == 5
    manifest = pd.read_csv(tmp_path / "demo/manifest.csv", keep_default_na=False)
    assert set(manifest.defect) == {"good", "scratch", "hole", "stain", "foreign_body", "crack", "unknown"}
    with pytest.raises(
        ConfigError, match=re.escape("'demo' is not a synthetic demo category (choose fabric | washer)")
    ):
        prepare_dataset(DataSettings(category="demo"), small, 0, tmp_path / "other")
