"""The fused detector: simplex grid, synthetic pasted defects, weights chosen on them, bundle round trip."""

from __future__ import annotations

import numpy as np
import torch

from diffad.components.detector import MethodOutput, Standardizer
from diffad.methods.fused.detector import (
    FUSION_IMAGE_PARTS,
    FUSION_MAP_PARTS,
    FusionWeights,
    fit_fusion,
    fused_output,
    paste_defects,
    simplex_grid,
)


def test_simplex_grid_sums_to_one_and_starts_with_the_even_spread():
    grid = simplex_grid(4, 0.25)
    assert len(grid) == 35  # C(4 + 3, 3)
    assert all(abs(sum(w) - 1) < 1e-9 and min(w) >= 0 for w in grid)
    assert grid[0] == (0.25, 0.25, 0.25, 0.25)
    assert len(set(grid)) == len(grid)


def test_paste_defects_changes_exactly_the_masked_pixels_and_is_seeded():
    images = torch.rand(6, 3, 32, 32) * 2 - 1
    pasted, masks = paste_defects(images, seed=3)
    again, masks_again = paste_defects(images, seed=3)
    assert torch.equal(pasted, again) and np.array_equal(masks, masks_again)
    changed = (pasted != images).any(dim=1).numpy()
    assert not changed[~masks].any()  # nothing outside the mask
    assert changed[masks].mean() > 0.9
    assert all(0.005 < m.mean() < 0.3 for m in masks)
    assert pasted.min() >= -1 and pasted.max() <= 1


def _outputs(masks: np.ndarray, informative: str, rng: np.random.Generator) -> dict[str, MethodOutput]:
    """Every part is noise except ``informative``, whose map lights up the mask."""
    out = {}
    for m in sorted(set(FUSION_MAP_PARTS) | set(FUSION_IMAGE_PARTS)):  # one draw order in every process
        maps = rng.normal(size=masks.shape).astype(np.float32)
        if m == informative:
            maps = maps + 1.5 * masks
        out[m] = MethodOutput(maps.reshape(len(maps), -1).max(axis=1).astype(np.float64), maps)
    return out


def test_fit_fusion_puts_the_weight_on_the_part_that_sees_the_pasted_defects():
    rng = np.random.default_rng(0)
    n, size = 40, 16
    masks = np.zeros((n, size, size), bool)
    masks[:, 4:9, 5:10] = True
    good = _outputs(np.zeros_like(masks), "none", rng)
    pasted = _outputs(masks, "padim", rng)
    standardizers = {m: Standardizer.fit(o) for m, o in good.items()}
    weights = fit_fusion(good, pasted, masks, standardizers)
    assert weights.map_weights["padim"] >= 0.75
    # the image scores separate perfectly from half the weight on, and ties go to the even spread
    others = [w for m, w in weights.image_weights.items() if m != "padim"]
    assert weights.image_weights["padim"] >= 0.5 and weights.image_weights["padim"] > max(others)
    fused = fused_output(pasted, standardizers, weights)
    assert fused.maps.shape == masks.shape and fused.scores.shape == (n,)
    # the fused map ranks the defect pixels above the rest
    assert fused.maps[masks].mean() > fused.maps[~masks].mean() + 1
    restored = FusionWeights(**weights.to_dict())
    assert restored == weights


def _parts_and_standardizers(seed: int, informative: str):
    masks = np.zeros((6, 8, 8), bool)
    masks[:, 2:4, 2:4] = True
    parts = _outputs(masks, informative, np.random.default_rng(seed))
    return parts, {m: Standardizer.fit(o) for m, o in parts.items()}


def test_map_max_image_score_is_the_maximum_of_the_fused_map():
    parts, standardizers = _parts_and_standardizers(seed=1, informative="ddim")
    weights = FusionWeights({"ddim": 0.5, "padim": 0.5}, {"msma_gmm": 1.0})
    fused = fused_output(parts, standardizers, weights, "map_max")
    assert np.allclose(fused.scores, fused.maps.reshape(6, -1).max(axis=1))
    weighted = fused_output(parts, standardizers, weights, "weighted")
    assert np.allclose(weighted.scores, standardizers["msma_gmm"].scores(parts["msma_gmm"].scores))


def test_a_part_weighted_zero_is_not_needed_and_changes_nothing():
    parts, standardizers = _parts_and_standardizers(seed=2, informative="patchcore")
    weights = FusionWeights(
        {"msma_flow": 0.25, "msma_features": 0.0, "ddim": 0.0, "patchcore": 0.75, "padim": 0.0},
        {"msma_gmm": 0, "msma_flow": 0.25, "msma_features": 0.25, "ddim": 0, "patchcore": 0.5, "padim": 0},
    )
    assert weights.used_parts("map_max") == ("msma_flow", "patchcore")
    assert weights.used_parts("weighted") == ("msma_flow", "patchcore", "msma_features")
    for how in ("map_max", "weighted"):
        every = fused_output(parts, standardizers, weights, how)
        used = {m: parts[m] for m in weights.used_parts(how)}  # what serving scores
        only = fused_output(used, standardizers, weights, how)
        assert np.array_equal(only.scores, every.scores) and np.array_equal(only.maps, every.maps)
