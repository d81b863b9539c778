"""The GX suite catches planted leaks, wrong sizes, constant images, missing masks and small splits."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from diffad.data.manifest import read_manifest
from diffad.data.prepare import prepare_dataset
from diffad.data.validation import validate_manifest, validate_prepared


def failed(report) -> dict:
    return {check.name: check for check in report.failed}


@pytest.fixture
def prepared(trees, tmp_path):
    """A clean prepared mvtec tree: 4 train, 2 test good, 2 crack."""

    def build(root=None, **config):
        root = root or trees.make()
        out = tmp_path / "prepared"
        prepare_dataset(trees.config(root, **config), trees.SMALL, 0, out)
        return out

    return build


def test_clean_dataset_passes_and_report_is_json(prepared, trees, tmp_path):
    out = prepared()
    report = validate_prepared(out, trees.SMALL, 16)
    assert report.success, report.summary()
    assert report.rows == 8
    report.write(tmp_path / "reports")
    data = json.loads((tmp_path / "reports/validation.json").read_text())
    assert data["success"] is True and data["checks_failed"] == 0
    assert {c["name"] for c in data["checks"]} >= {
        "train_test_leak",
        "not_constant",
        "width",
        "mask_for_defects",
    }
    assert (tmp_path / "reports/validation.html").read_text().startswith("<!doctype html>")


def test_planted_train_test_leak_is_named(prepared, trees):
    root = trees.make()
    leaked = root / "test/good/leak.png"
    leaked.write_bytes((root / "train/good/002.png").read_bytes())  # the same file in train and test
    report = validate_prepared(prepared(root), trees.SMALL, 16)
    assert not report.success
    leak = failed(report)["train_test_leak"]
    assert leak.offending_count == 1
    assert leak.offending[0] == {"path": "images/test/good/leak.png", "value": "images/train/good/002.png"}
    assert "repeated_sha256" in failed(report)
    summary = report.summary()
    assert summary.index("train_test_leak") < summary.index("ok ")  # failures first
    assert "leakage" in summary and "images/test/good/leak.png" in summary


def test_planted_constant_image_is_named(prepared, trees):
    root = trees.make()
    Image.new("RGB", (48, 40), (90, 90, 90)).save(root / "train/good/flat.png")
    report = validate_prepared(prepared(root), trees.SMALL, 16)
    constant = failed(report)["not_constant"]
    assert [o["path"] for o in constant.offending] == ["images/train/good/flat.png"]
    assert set(failed(report)) == {"not_constant"}


def test_planted_wrong_size_is_named(prepared, trees):
    out = prepared()
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    manifest.loc[3, "width"] = 32
    manifest.to_csv(out / "manifest.csv", index=False)
    report = validate_prepared(out, trees.SMALL, 16)
    assert set(failed(report)) == {"width"}
    assert failed(report)["width"].offending == ({"path": manifest.path[3], "value": 32},)
    # Validated against another resolution, every row is wrong.
    assert failed(validate_prepared(out, trees.SMALL, 32))["height"].offending_count == 8


def test_defect_image_without_mask_fails_only_when_the_source_has_masks(prepared, trees):
    root = trees.make()
    (root / "ground_truth/crack/001_mask.png").unlink()
    report = validate_prepared(prepared(root), trees.SMALL, 16)
    assert [o["path"] for o in failed(report)["mask_for_defects"].offending] == ["images/test/crack/001.png"]
    folder = trees.make(name="digits", masks=False)
    assert validate_prepared(prepared(folder, source="folder"), trees.SMALL, 16).success


def test_too_few_images_per_split(prepared, trees):
    root = trees.make(train=3, test_good=1, defects={}, unknown=4)
    out = prepared(root)
    report = validate_prepared(out, type(trees.SMALL)(min_train_images=4, min_test_images=2), 16)
    assert failed(report)["train_images"].observed == 3
    assert failed(report)["test_images"].observed == 1  # unknown images do not count as labelled


def test_missing_column_and_values_out_of_their_sets(prepared, trees):
    out = prepared()
    manifest = read_manifest(out / "manifest.csv")
    manifest.loc[0, "split"] = "holdout"
    manifest.loc[1, "label"] = "bad"
    broken = manifest.drop(columns=["sha256"])
    report = validate_manifest(broken, resolution=16, has_masks=True, min_train_images=2, min_test_images=2)
    failures = failed(report)
    assert {"columns", "split_values", "label_values"} <= set(failures)
    assert failures["split_values"].offending == ({"path": manifest.path[0], "value": "holdout"},)
    assert failures["columns"].observed == {"missing": ["sha256"]}
    assert "sha256" in json.dumps(report.to_dict())  # JSON-safe even with GX exceptions inside


def test_constant_and_leak_on_a_hand_made_manifest():
    rows = {
        "path": ["images/test/good/a.png", "images/train/good/b.png", "images/train/good/c.png"],
        "split": ["test", "train", "train"],
        "label": ["good", "good", "good"],
        "defect": ["good"] * 3,
        "mask_path": [""] * 3,
        "width": [8] * 3,
        "height": [8] * 3,
        "channels": [3] * 3,
        "mean": [0.5] * 3,
        "std": [0.1, 0.0, 0.2],
        "sha256": ["x", "y", "x"],
        "source_path": ["a", "b", "c"],
        "source_mode": ["RGB"] * 3,
        "mask_pixels": [0] * 3,
        "pixel_sha256": ["p", "q", "r"],
        "origin": ["source"] * 3,
    }
    report = validate_manifest(
        pd.DataFrame(rows), resolution=8, has_masks=False, min_train_images=1, min_test_images=1
    )
    failures = failed(report)
    assert set(failures) == {"train_test_leak", "repeated_sha256", "not_constant"}
    assert failures["train_test_leak"].offending[0]["value"] == "images/train/good/c.png"
    assert failures["not_constant"].offending[0]["path"] == "images/train/good/b.png"
    assert np.isclose(failures["not_constant"].offending[0]["value"], 0.0)


def test_the_columns_check_shows_the_manifest_columns_not_the_checks_helpers(prepared, trees):
    """issue 23: Data quality showed `_empty_mask`, `_near_train`, `_row` as observed columns."""
    from diffad.data.manifest import MANIFEST_COLUMNS

    report = validate_prepared(prepared(), trees.SMALL, 16)
    [columns] = [c for c in report.checks if c.name == "columns"]
    assert columns.success and set(columns.observed) == set(MANIFEST_COLUMNS)
