"""The real-photo benchmark's dataset builder (bench/real_data.py): layout, determinism, masks, splits."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffad.data.sources import BadInputLog, scan_source

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import real_data  # noqa: E402

pytest.importorskip("skimage")


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _locate(photo: np.ndarray, crop: np.ndarray, keep: np.ndarray) -> list[tuple[int, int]]:
    """Every (top, left) where ``photo`` equals ``crop`` on the pixels ``keep``."""
    size = crop.shape[0]
    ys, xs = np.nonzero(keep)
    pick = np.random.default_rng(0).choice(len(ys), size=min(24, len(ys)), replace=False)
    ys, xs = ys[pick], xs[pick]
    tops = np.arange(photo.shape[0] - size + 1)[:, None, None]
    lefts = np.arange(photo.shape[1] - size + 1)[None, :, None]
    sample = photo[tops + ys, lefts + xs]  # (T, L, k, 3)
    hits = np.all(sample == crop[ys, xs], axis=(2, 3))
    return [
        (int(t), int(left))
        for t, left in zip(*np.nonzero(hits), strict=True)
        if np.array_equal(photo[t : t + size, left : left + size][keep], crop[keep])
    ]


@pytest.fixture(scope="module")
def tissue(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "tissue"
    real_data.build_category("tissue", out, seed=0)
    return out


def test_layout_is_mvtec_and_the_project_scanner_accepts_it(tissue: Path):
    spec = real_data.TEXTURES["tissue"]
    assert len(list((tissue / "train" / "good").glob("*.png"))) == spec.n_train
    assert sorted(p.name for p in (tissue / "test").iterdir()) == sorted(("good", *real_data.DEFECTS))
    assert not (tissue / "ground_truth" / "good").exists()
    for defect in real_data.DEFECTS:
        images = sorted((tissue / "test" / defect).glob("*.png"))
        assert len(images) == spec.n_per_defect
        for image in images:
            assert (tissue / "ground_truth" / defect / f"{image.stem}_mask.png").is_file()
    items = scan_source(tissue, with_masks=True, log=BadInputLog("fail", tissue))
    defective = [i for i in items if i.label == "anomaly"]
    assert len(defective) == spec.n_per_defect * len(real_data.DEFECTS)
    assert all(i.mask is not None for i in defective)


def test_building_twice_gives_identical_files(tissue: Path, tmp_path: Path):
    again = tmp_path / "tissue"
    real_data.build_category("tissue", again, seed=0)
    files = sorted(p.relative_to(tissue) for p in tissue.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((tissue / f).read_bytes() == (again / f).read_bytes() for f in files)
    other = tmp_path / "seed1"
    real_data.build_category("tissue", other, seed=1)
    assert (tissue / "test/scratch/000.png").read_bytes() != (other / "test/scratch/000.png").read_bytes()


def test_defects_change_only_masked_pixels_on_test_rows_never_seen_in_training(tissue: Path):
    photo = real_data.load_texture(real_data.TEXTURES["tissue"])
    train_rows, test_rows = real_data.split_rows(photo.shape[0])
    boundary = test_rows.start
    for defect in real_data.DEFECTS:
        for stem in ("000", "005"):
            image = _read(tissue / "test" / defect / f"{stem}.png")
            mask = _read(tissue / "ground_truth" / defect / f"{stem}_mask.png") > 0
            assert 0.001 < mask.mean() < 0.25, (defect, stem)
            hits = _locate(photo, image, ~mask)  # outside the mask: the photo, untouched
            assert hits, f"{defect}/{stem}: unmasked pixels are not a crop of the photo"
            top, left = hits[0]
            assert top >= boundary  # test crops lie below the training band
            original = photo[top : top + image.shape[0], left : left + image.shape[1]]
            changed = np.any(image != original, axis=2)
            assert changed[mask].mean() > 0.5, (defect, stem)  # the mask is painted
    for stem in ("000", "001", "199"):
        crop = _read(tissue / "train" / "good" / f"{stem}.png")
        hits = _locate(photo, crop, np.ones(crop.shape[:2], bool))
        assert hits and all(top + crop.shape[0] <= boundary for top, _ in hits)


def test_one_class_faces_has_no_masks_and_disjoint_train_and_test(tmp_path: Path):
    out = tmp_path / "faces"
    real_data.build_category("faces", out, seed=0)
    assert not (out / "ground_truth").exists()
    assert sorted(p.name for p in (out / "test").iterdir()) == ["good", "nonface"]
    train = {p.read_bytes() for p in (out / "train" / "good").glob("*.png")}
    test = {p.read_bytes() for p in (out / "test" / "good").glob("*.png")}
    assert len(train) == 70 and len(test) == 30 and not train & test
    scan_source(out, with_masks=False, log=BadInputLog("fail", out))


def test_reserved_photos_are_refused():
    with pytest.raises(ValueError, match="reserved"):
        real_data.skimage_photo("gravel.png")
