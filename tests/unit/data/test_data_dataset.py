"""load_prepared: round trip from a source tree to tensors and aligned masks."""

import json

import numpy as np
import pytest
import torch

from diffad.core.errors import DataError
from diffad.data.dataset import load_prepared
from diffad.data.prepare import prepare_dataset
from diffad.data.transforms import to_model_input


@pytest.fixture
def dataset(trees, tmp_path):
    # 96x80 sources -> 48 px: no halving (80 < 96), bicubic x0.6 to 58x48, crop 5 px on the left.
    root = trees.make(train=3, test_good=1, defects={"crack": 2}, unknown=1, size=(96, 80))
    prepare_dataset(trees.config(root, resolution=48), trees.SMALL, 0, tmp_path / "prepared")
    return load_prepared(tmp_path / "prepared"), root


def test_images_are_float_tensors_in_manifest_order(dataset):
    ds, root = dataset
    assert ds.has_masks and len(ds.manifest) == 7
    images = ds.images()
    assert images.shape == (7, 3, 48, 48) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    # Same pixels as the predict-time entry point applied to the source file.
    row = ds.rows(split="train").iloc[[1]]
    expected = to_model_input(root / row.source_path.iloc[0], 48, "center-crop-dhariwal")
    torch.testing.assert_close(ds.images(row), expected)


def test_masks_align_with_the_planted_square(dataset, trees):
    ds, _ = dataset
    defects = ds.rows(label="anomaly")
    masks = ds.masks(defects)
    images = ds.images(defects)
    assert masks.dtype == np.uint8 and set(np.unique(masks)) == {0, 1}
    # The planted square is pure white (1.0 in every channel); inside the mask it stays near white.
    square = images.min(dim=1).values.numpy()
    inside = square[masks == 1]
    assert inside.mean() > 0.9
    # Size: source square 16x12 at scale 0.6 -> about 9.6 x 7.2 = 69 px.
    assert np.all(np.abs(masks.reshape(len(masks), -1).sum(1).astype(int) - 69) < 12)
    goods = ds.masks(ds.rows(label="good"))
    assert goods.shape == (4, 48, 48) and goods.sum() == 0


def test_rows_filter_and_keep_order(dataset):
    ds, _ = dataset
    test = ds.rows(split="test")
    assert list(test.index) == sorted(test.index)
    assert set(test.label) == {"good", "anomaly", "unknown"}
    assert len(ds.rows(split="test", label="anomaly", defect="crack")) == 2
    assert ds.images(ds.rows(label="nothing")).shape == (0, 3, 48, 48)


def test_folder_dataset_has_no_masks(trees, tmp_path):
    root = trees.make(defects={"other": 2}, masks=False)
    prepare_dataset(trees.config(root, source="folder"), trees.SMALL, 0, tmp_path / "p")
    ds = load_prepared(tmp_path / "p")
    assert ds.has_masks is False and ds.masks() is None


def test_missing_or_corrupt_files_are_named(dataset, tmp_path):
    ds, _ = dataset
    with pytest.raises(DataError, match="not found"):
        load_prepared(tmp_path / "absent")
    root = ds.root
    (root / "info.json").write_text("{not json")
    with pytest.raises(DataError, match="info.json"):
        load_prepared(root)
    (root / "info.json").write_text(json.dumps(ds.info))
    (root / ds.manifest.path.iloc[0]).write_bytes(b"garbage")
    with pytest.raises(DataError, match=ds.manifest.path.iloc[0]):
        load_prepared(root).images()
    (root / "manifest.csv").write_text("path,split\nimages/a.png,train\n")
    with pytest.raises(DataError, match="manifest.csv.*lacks column"):
        load_prepared(root)
    (root / "manifest.csv").unlink()
    with pytest.raises(DataError, match="manifest.csv"):
        load_prepared(root)
