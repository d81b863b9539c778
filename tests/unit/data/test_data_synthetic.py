"""The demo generator: deterministic, exact masks, visible defects, MVTec layout on disk."""

import numpy as np
import pytest
from PIL import Image

from diffad.core.errors import ConfigError
from diffad.data.settings import ConvertDatasetSettings
from diffad.data.synthetic import DEFECTS, RENDER, add_defect, make_image, write_demo

CASES = [(category, defect) for category, defects in DEFECTS.items() for defect in defects]


@pytest.mark.parametrize("category", list(DEFECTS))
def test_same_seed_same_image_other_seed_other_image(category):
    a, mask_a = make_image(category, "test", DEFECTS[category][0], 3, seed=11)
    b, mask_b = make_image(category, "test", DEFECTS[category][0], 3, seed=11)
    c, _ = make_image(category, "test", DEFECTS[category][0], 3, seed=12)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(mask_a, mask_b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 1


@pytest.mark.parametrize("category", list(DEFECTS))
def test_good_images_vary_mildly_but_are_not_copies(category):
    images = np.stack([make_image(category, "train", "good", i, 0)[0] for i in range(6)]).astype(float)
    assert all(images[i].std() > 10 for i in range(6))  # textured, not flat
    differences = [np.abs(images[i] - images[j]).mean() for i in range(6) for j in range(i + 1, 6)]
    assert min(differences) > 1.0


@pytest.mark.parametrize("category,defect", CASES)
def test_mask_is_exactly_the_changed_pixels(category, defect):
    for index in range(3):
        rng = np.random.default_rng([5, index])
        scene = RENDER[category](rng)
        image, mask = add_defect(scene, defect, rng)
        changed = np.abs(image - scene.image).max(axis=-1) > 0
        assert mask.sum() >= 4
        np.testing.assert_array_equal(changed, mask)


def contrast(category: str, defect: str, count: int = 8) -> list[float]:
    """Mean absolute change inside the mask, per image (image values in [0, 1])."""
    values = []
    for index in range(count):
        rng = np.random.default_rng([9, index])
        scene = RENDER[category](rng)
        image, mask = add_defect(scene, defect, rng)
        values.append(float(np.abs(image - scene.image)[mask].mean()))
    return values


@pytest.mark.parametrize("category,defect", CASES)
def test_defects_are_visible(category, defect):
    assert min(contrast(category, defect)) > 0.03  # > ~8 grey levels on average: a person sees it


@pytest.mark.parametrize("category", list(DEFECTS))
def test_stains_are_subtler_than_holes(category):
    assert np.mean(contrast(category, "stain")) < 0.5 * np.mean(contrast(category, "hole"))


def test_washer_defects_stay_on_the_metal():
    for defect in ("scratch", "hole", "stain", "crack"):
        rng = np.random.default_rng(3)
        scene = RENDER["washer"](rng)
        _, mask = add_defect(scene, defect, rng)
        assert (scene.depth[mask] > -2.5).all(), defect


def test_write_demo_builds_an_mvtec_tree(tmp_path):
    sizes = ConvertDatasetSettings(
        demo_train_good=2, demo_test_good=1, demo_test_per_defect=2, demo_test_unknown=3
    )
    write_demo("fabric", sizes, 4, tmp_path)
    assert len(list((tmp_path / "train/good").iterdir())) == 2
    assert len(list((tmp_path / "test/unknown").iterdir())) == 3
    assert not (tmp_path / "ground_truth/unknown").exists() and not (tmp_path / "ground_truth/good").exists()
    for defect in DEFECTS["fabric"]:
        images = sorted((tmp_path / "test" / defect).iterdir())
        assert [p.name for p in images] == ["000.png", "001.png"]
        mask = np.asarray(Image.open(tmp_path / "ground_truth" / defect / "001_mask.png"))
        expected_image, expected_mask = make_image("fabric", "test", defect, 1, 4)
        np.testing.assert_array_equal(np.asarray(Image.open(images[1])), expected_image)
        np.testing.assert_array_equal(mask, np.where(expected_mask, 255, 0))
        assert Image.open(images[0]).size == (128, 128)


def test_unknown_category_names_the_choices(tmp_path):
    with pytest.raises(ConfigError, match=r"'bottle'.*fabric \| washer"):
        write_demo("bottle", ConvertDatasetSettings(), 0, tmp_path)
