"""The calibration split: a seeded share of train/good, disjoint from train, validated for size."""

import json

import pandas as pd
import pytest

from diffad.data.prepare import prepare_dataset
from diffad.data.settings import ConvertDatasetSettings
from diffad.data.split import calibration_count
from diffad.data.validation import validate_prepared


def held_out(fraction=0.25, minimum=3, min_train=2):
    return ConvertDatasetSettings(
        min_train_images=min_train,
        min_test_images=2,
        calibration_fraction=fraction,
        min_calibration_images=minimum,
    )


@pytest.mark.parametrize(
    ("n_good", "fraction", "minimum", "min_train", "expected"),
    [
        (100, 0.2, 20, 8, 20),
        (240, 0.2, 20, 8, 48),
        (60, 0.2, 20, 8, 20),
        (24, 0.2, 20, 8, 16),
        (5, 0.0, 0, 2, 0),
    ],
)
def test_calibration_count_is_the_share_at_least_the_minimum_leaving_enough_to_train(
    n_good, fraction, minimum, min_train, expected
):
    cfg = ConvertDatasetSettings(
        min_train_images=min_train, calibration_fraction=fraction, min_calibration_images=minimum
    )
    assert calibration_count(n_good, cfg) == expected


def test_calibration_images_are_seeded_disjoint_from_train_and_stated_in_the_manifest(trees, tmp_path):
    root = trees.make(train=16, test_good=2, defects={"crack": 2})
    cfg = held_out()
    prepare_dataset(trees.config(root), cfg, 0, tmp_path / "a")
    prepare_dataset(trees.config(root), cfg, 0, tmp_path / "b")
    prepare_dataset(trees.config(root), cfg, 1, tmp_path / "c")
    a, b, c = (pd.read_csv(tmp_path / x / "manifest.csv", keep_default_na=False) for x in "abc")
    calibration = a[a.split == "calibration"]
    assert len(calibration) == 4 and (calibration.label == "good").all()
    assert calibration.path.str.startswith("images/calibration/good/").all()
    assert not set(calibration.sha256) & set(a[a.split == "train"].sha256)
    assert len(a[a.split == "train"]) == 12
    assert list(calibration.source_path) == list(b[b.split == "calibration"].source_path)  # seeded
    assert set(calibration.source_path) != set(c[c.split == "calibration"].source_path)
    info = json.loads((tmp_path / "a/info.json").read_text())
    assert info["counts"]["calibration"] == 4 and info["counts"]["train"] == 12
    assert validate_prepared(tmp_path / "a", cfg, 16).success


def test_validation_fails_naming_the_calibration_shortfall(trees, tmp_path):
    root = trees.make(train=6, test_good=2, defects={"crack": 2})
    cfg = held_out(fraction=0.2, minimum=4, min_train=4)  # 6 images cannot give 4 + 4
    prepare_dataset(trees.config(root), cfg, 0, tmp_path / "p")
    report = validate_prepared(tmp_path / "p", cfg, 16)
    failed = {check.name: check for check in report.failed}
    assert set(failed) == {"calibration_images"}
    assert failed["calibration_images"].observed == 2
    assert "calibration_images" in report.summary() and "min_calibration_images" in report.summary()


def test_validation_defects_are_imported_as_their_own_split(trees, tmp_path):
    root = trees.make(train=8, test_good=2, defects={"crack": 2})
    for i in range(3):
        trees.save(trees.defect_pair(100 + i)[0], root / "validation" / "crack" / f"v{i}.png")
    prepare_dataset(trees.config(root), held_out(), 0, tmp_path / "p")
    manifest = pd.read_csv(tmp_path / "p/manifest.csv", keep_default_na=False)
    validation = manifest[manifest.split == "validation"]
    assert (
        len(validation) == 3 and set(validation.label) == {"anomaly"} and set(validation.defect) == {"crack"}
    )
    assert validate_prepared(tmp_path / "p", held_out(), 16).success


def test_the_good_training_images_are_defined_once_and_exclude_the_calibration_share(tmp_path) -> None:
    """One definition (issue 12): every stage that fits a model takes ``training_rows``, and no
    stage or library module outside the dataset selects the training split by hand."""
    import re
    from pathlib import Path

    import pandas as pd

    from diffad.data.dataset import PreparedDataset

    manifest = pd.DataFrame(
        {
            "split": ["train", "calibration", "train", "test", "test", "validation"],
            "label": ["good", "good", "good", "good", "anomaly", "anomaly"],
        }
    )
    dataset = PreparedDataset(tmp_path, manifest, {})
    assert list(dataset.positions(dataset.training_rows())) == [0, 2]
    assert list(dataset.positions(dataset.calibration_rows())) == [1]

    root = Path(__file__).resolve().parents[3]
    by_hand = re.compile(r"""split\s*=\s*["']train["']|\[["']split["']\]\s*==\s*["']train["']""")
    sources = [*root.glob("stages/*.py"), *(root / "src/diffad").rglob("*.py")]
    offenders = [
        p.relative_to(root).as_posix()
        for p in sources
        if by_hand.search(p.read_text()) and p.parent.name != "data"  # data/: the split is made there
    ]
    assert not offenders, offenders
