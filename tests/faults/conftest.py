"""Fault injection: tiny inputs a careless user or a hostile file would produce.

Every test here is the regression test of a fault found by probing (issue 11); each one failed
on the code before its fix. Keep them fast: tiny images, tiny models, no pipeline run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image


def noise(seed: int, size: tuple[int, int] = (24, 20)) -> np.ndarray:
    """A unique (H, W, 3) uint8 noise image (W, H = size)."""
    return np.random.default_rng(seed).integers(30, 200, (size[1], size[0], 3), dtype=np.uint8)


def save(array: np.ndarray, path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file below ``root``."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


class Raw:
    """Builds MVTec-layout source trees and params files for the stage scripts."""

    noise = staticmethod(noise)
    save = staticmethod(save)
    digest = staticmethod(digest)

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

    def tree(self, name: str = "raw", train: int = 6, test_good: int = 2, defects: int = 2) -> Path:
        root = self.tmp_path / name
        seed = 0
        for i in range(train):
            save(noise(seed := seed + 1), root / "train" / "good" / f"{i:03d}.png")
        for i in range(test_good):
            save(noise(seed := seed + 1), root / "test" / "good" / f"{i:03d}.png")
        for i in range(defects):
            image, mask = noise(seed := seed + 1), np.zeros((20, 24), np.uint8)
            image[4:12, 4:12] = 255
            mask[4:12, 4:12] = 255
            save(image, root / "test" / "crack" / f"{i:03d}.png")
            save(mask, root / "ground_truth" / "crack" / f"{i:03d}_mask.png")
        return root

    def params(self, root: Path, **sections) -> Path:
        """A params.yaml importing ``root`` at 16 px with small validation minimums."""
        raw = {
            "data": {"source": "mvtec", "path": str(root), "category": "tiny", "resolution": 16},
            "train_denoiser": {"resolution": 16},
            "runtime": {"threads": 1},
            "convert_dataset": {"min_train_images": 2, "min_test_images": 2, "min_calibration_images": 1},
        }
        for section, values in sections.items():
            raw.setdefault(section, {}).update(values)
        path = self.tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path


@pytest.fixture
def raw(tmp_path: Path) -> Raw:
    return Raw(tmp_path)


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Two fitted models (different training images): bundle A and bundle B."""
    from tests.faults.bundles import fitted_models

    root = tmp_path_factory.mktemp("models")
    return fitted_models(root / "a", seed=1), fitted_models(root / "b", seed=2)


@pytest.fixture
def bundle(models, tmp_path) -> Path:
    root = tmp_path / "models" / "bundle"
    from tests.faults.bundles import publish

    publish(models[0], root)
    return root
