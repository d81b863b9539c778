"""Small MVTec-layout trees built on the fly for the data tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffad.data.settings import ConvertDatasetSettings, DataSettings

SQUARE = (8, 8, 24, 20)  # (left, top, right, bottom) of the planted defect, source pixels


def noise_rgb(seed: int, size: tuple[int, int] = (48, 40)) -> np.ndarray:
    """A unique, non-constant (H, W, 3) uint8 image (W, H = size)."""
    rng = np.random.default_rng(seed)
    return rng.integers(30, 200, (size[1], size[0], 3), dtype=np.uint8)


def defect_pair(seed: int, size: tuple[int, int] = (48, 40)) -> tuple[np.ndarray, np.ndarray]:
    """Noise image with a white square and its 0/255 mask."""
    image = noise_rgb(seed, size)
    mask = np.zeros(image.shape[:2], np.uint8)
    left, top, right, bottom = SQUARE
    image[top:bottom, left:right] = 255
    mask[top:bottom, left:right] = 255
    return image, mask


def save(array: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


class Trees:
    """Helpers handed to the tests by the ``trees`` fixture (no cross-module test imports)."""

    SQUARE = SQUARE
    SMALL = ConvertDatasetSettings(
        min_train_images=2, min_test_images=2, calibration_fraction=0.0, min_calibration_images=0
    )  # no calibration split: these tests count train images; test_data_split.py covers it
    noise_rgb = staticmethod(noise_rgb)
    defect_pair = staticmethod(defect_pair)
    save = staticmethod(save)

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

    def make(
        self,
        name: str = "raw",
        train: int = 4,
        test_good: int = 2,
        defects: dict[str, int] | None = None,
        unknown: int = 0,
        masks: bool = True,
        size: tuple[int, int] = (48, 40),
    ) -> Path:
        """An MVTec-layout tree of unique noise images; defect images carry SQUARE and its mask."""
        root = self.tmp_path / name
        seed = 0
        for index in range(train):
            save(noise_rgb(seed := seed + 1, size), root / "train" / "good" / f"{index:03d}.png")
        for index in range(test_good):
            save(noise_rgb(seed := seed + 1, size), root / "test" / "good" / f"{index:03d}.png")
        for defect, count in (defects if defects is not None else {"crack": 2}).items():
            for index in range(count):
                image, mask = defect_pair(seed := seed + 1, size)
                save(image, root / "test" / defect / f"{index:03d}.png")
                if masks:
                    save(mask, root / "ground_truth" / defect / f"{index:03d}_mask.png")
        for index in range(unknown):
            save(noise_rgb(seed := seed + 1, size), root / "test" / "unknown" / f"{index:03d}.png")
        return root

    @staticmethod
    def config(root: Path | str, source: str = "mvtec", resolution: int = 16, **kwargs) -> DataSettings:
        return DataSettings(source=source, path=str(root), category="tiny", resolution=resolution, **kwargs)

    @staticmethod
    def digest(root: Path) -> dict[str, str]:
        """Relative path -> sha256 of every file under ``root`` (to prove it was not modified)."""
        return {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }


@pytest.fixture
def trees(tmp_path: Path) -> Trees:
    return Trees(tmp_path)
