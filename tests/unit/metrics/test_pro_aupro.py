"""AUPRO: exact agreement with a brute-force reference, hand cases, errors."""

import numpy as np
import pytest
from scipy import ndimage

from diffad.metrics.pro import aupro, pro_curve


def brute_force_aupro(masks, maps, fpr_limit):
    """Loop over every distinct threshold; PRO and FPR straight from the definition; partial trapezoid."""
    structure = np.ones((3, 3), dtype=bool)
    per_image = []
    for i, mask in enumerate(masks):
        labelled, k = ndimage.label(mask, structure=structure)
        per_image += [(i, labelled == r) for r in range(1, k + 1)]
    good = masks == 0
    points = [(0.0, 0.0)]
    for t in np.unique(maps)[::-1]:
        pred = maps >= t
        pro = np.mean([pred[i][region].mean() for i, region in per_image])
        fpr = pred[good].sum() / good.sum()
        points.append((fpr, pro))
    area = 0.0
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:], strict=True):
        if x1 <= fpr_limit:
            area += (x1 - x0) * (y0 + y1) / 2
        elif x0 < fpr_limit:
            y_lim = y0 + (y1 - y0) * (fpr_limit - x0) / (x1 - x0)
            area += (fpr_limit - x0) * (y0 + y_lim) / 2
            break
    return area / fpr_limit


def random_case(seed, n=3, size=10):
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), dtype=bool)
    for img in range(1, n):  # image 0 stays good
        for _ in range(int(rng.integers(1, 4))):  # several regions, sometimes touching or merging
            y, x = rng.integers(0, size - 2, 2)
            h, w = rng.integers(1, 4, 2)
            masks[img, y : y + h, x : x + w] = True
    # a diagonal-only touch: one region under 8-connectivity, two under 4-connectivity
    masks[1, -2, 0] = masks[1, -1, 1] = True
    maps = rng.integers(0, 12, masks.shape).astype(np.float32) + 4 * masks  # many ties, overlapping scores
    return masks, maps


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("fpr_limit", [0.3, 0.05, 1.0])
def test_matches_brute_force(seed, fpr_limit):
    masks, maps = random_case(seed)
    assert aupro(masks, maps, fpr_limit=fpr_limit) == pytest.approx(
        brute_force_aupro(masks, maps, fpr_limit), abs=1e-6
    )


def test_continuous_scores_match_brute_force():
    masks, _ = random_case(42, n=2, size=8)
    maps = np.random.default_rng(1).random(masks.shape) + 0.3 * masks
    assert aupro(masks, maps) == pytest.approx(brute_force_aupro(masks, maps, 0.3), abs=1e-6)


def test_diagonal_touch_is_one_region():
    # a and b touch at a corner, c is apart. 8-connected regions {a, b}, {c}; detecting a and c gives
    # PRO = (1/2 + 1) / 2 = 0.75 (4-connectivity would give three regions and PRO 2/3).
    mask = np.zeros((1, 6, 6), dtype=bool)
    mask[0, 1, 1] = mask[0, 2, 2] = mask[0, 4, 4] = True
    heat = np.zeros((1, 6, 6))
    heat[0, 1, 1] = heat[0, 4, 4] = 1.0
    fpr, pro, thr = pro_curve(mask, heat, fpr_limit=None)
    assert pro[1] == pytest.approx(0.75) and fpr[1] == 0.0 and thr[1] == 1.0


def test_map_equal_to_mask_is_perfect_and_inverse_is_zero():
    mask = np.zeros((2, 16, 16), dtype=bool)
    mask[1, 4:9, 3:12] = True
    assert aupro(mask, mask.astype(float)) == pytest.approx(1.0)
    assert aupro(mask, 1.0 - mask) == pytest.approx(0.0)


def test_constant_map_is_half_of_the_limit_triangle():
    # one tie group: the curve jumps from (0, 0) to (1, 1); its area up to f is f^2 / 2 -> AUPRO f / 2
    mask = np.zeros((1, 8, 8), dtype=bool)
    mask[0, :2, :2] = True
    assert aupro(mask, np.zeros((1, 8, 8)), fpr_limit=0.3) == pytest.approx(0.15)


def test_curve_ends_at_the_limit_and_is_thinned_on_request():
    masks, maps = random_case(3, n=4, size=16)
    maps = maps + np.random.default_rng(0).random(maps.shape)  # distinct scores: a long curve
    fpr, pro, thr = pro_curve(masks, maps, fpr_limit=0.3)
    assert fpr[0] == 0.0 and fpr[-1] == pytest.approx(0.3)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(pro) >= -1e-12) and np.all(np.diff(thr) < 0)
    fpr_t, pro_t, _ = pro_curve(masks, maps, fpr_limit=0.3, num_thresholds=20)
    assert len(fpr_t) <= 20 and fpr_t[0] == 0.0 and fpr_t[-1] == fpr[-1] and pro_t[-1] == pro[-1]


def test_errors():
    with pytest.raises(ValueError, match="needs defect pixels"):
        aupro(np.zeros((2, 4, 4)), np.random.default_rng(0).random((2, 4, 4)))
    with pytest.raises(ValueError, match="needs good pixels"):
        aupro(np.ones((1, 4, 4)), np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        aupro(np.eye(4)[None], np.full((1, 4, 4), np.nan))
    with pytest.raises(ValueError, match="must both be"):
        aupro(np.eye(4)[None], np.zeros((1, 4, 5)))
