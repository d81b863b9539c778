"""Score cache files: float16 round trip and errors that name the broken file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from diffad.components.score_norms import ScoreNorms, load_score_cache, save_score_cache
from diffad.components.settings import ScoreNormSettings
from diffad.core.errors import ArtifactError, DataError


def make_norms(n: int = 4, levels: int = 3) -> ScoreNorms:
    rng = np.random.default_rng(0)
    return ScoreNorms(
        rng.uniform(1, 50, (n, levels)).astype(np.float32),
        rng.uniform(0, 5, (n, levels, 4, 4)).astype(np.float32),
    )


def test_round_trip_keeps_image_norms_exact_and_patch_norms_to_float16(tmp_path: Path) -> None:
    norms, sigmas = make_norms(), np.array([64.0, 3.0, 0.1])
    save_score_cache(tmp_path, norms, sigmas, config=ScoreNormSettings(num_sigmas=3))
    image, patch, loaded_sigmas = load_score_cache(tmp_path)
    assert image.dtype == np.float32 and patch.dtype == np.float16
    np.testing.assert_array_equal(image, norms.image_norms)
    np.testing.assert_allclose(patch, norms.patch_norms, rtol=1e-3, atol=1e-4)
    np.testing.assert_array_equal(loaded_sigmas, sigmas)
    assert json.loads((tmp_path / "sigmas.json").read_text())["config"]["num_sigmas"] == 3


@pytest.mark.parametrize("name", ["image_norms.npy", "patch_norms.npy", "sigmas.json"])
def test_missing_file_is_named(tmp_path: Path, name: str) -> None:
    save_score_cache(tmp_path, make_norms(), [64.0, 3.0, 0.1])
    (tmp_path / name).unlink()
    with pytest.raises(ArtifactError, match=name):
        load_score_cache(tmp_path)


@pytest.mark.parametrize("name", ["image_norms.npy", "patch_norms.npy", "sigmas.json"])
def test_corrupt_file_is_named(tmp_path: Path, name: str) -> None:
    save_score_cache(tmp_path, make_norms(), [64.0, 3.0, 0.1])
    (tmp_path / name).write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ArtifactError, match=name):
        load_score_cache(tmp_path)


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    save_score_cache(tmp_path, make_norms(), [64.0, 3.0, 0.1])
    np.save(tmp_path / "image_norms.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ArtifactError, match="image_norms.npy"):
        load_score_cache(tmp_path)


def test_inconsistent_shapes_name_the_file(tmp_path: Path) -> None:
    save_score_cache(tmp_path, make_norms(), [64.0, 3.0, 0.1])
    np.save(tmp_path / "patch_norms.npy", np.ones((5, 3, 4, 4), np.float16))  # one image too many
    with pytest.raises(ArtifactError, match="patch_norms.npy"):
        load_score_cache(tmp_path)
    save_score_cache(tmp_path, make_norms(), [64.0, 3.0, 0.1])
    (tmp_path / "sigmas.json").write_text(json.dumps({"sigmas": [64.0, 0.1]}))  # L = 2, arrays have 3
    with pytest.raises(ArtifactError, match="image_norms.npy"):
        load_score_cache(tmp_path)


def test_norms_beyond_float16_or_not_finite_are_refused(tmp_path: Path) -> None:
    norms = make_norms()
    big = ScoreNorms(norms.image_norms, norms.patch_norms * 1e5)
    with pytest.raises(DataError, match="patch_norms.npy"):
        save_score_cache(tmp_path, big, [64.0, 3.0, 0.1])
    nan = ScoreNorms(np.full_like(norms.image_norms, np.nan), norms.patch_norms)
    with pytest.raises(DataError, match="image_norms.npy"):
        save_score_cache(tmp_path, nan, [64.0, 3.0, 0.1])
