"""Thresholds, normalisation and the ensemble's standardisation on synthetic scores."""

import numpy as np
import pytest

from diffad.evaluation.methods import MethodOutput, Standardizer, ensemble_output
from diffad.evaluation.thresholds import fit_thresholds


def _outputs(rng, n_good, n_bad, shift):
    scores = np.concatenate([rng.normal(0, 1, n_good), rng.normal(shift, 1, n_bad)])
    maps = rng.normal(0, 1, (n_good + n_bad, 8, 8)).astype(np.float32)
    masks = np.zeros_like(maps, dtype=np.uint8)
    for i in range(n_good, n_good + n_bad):
        maps[i, 2:4, 2:4] += shift
        masks[i, 2:4, 2:4] = 1
    labels = np.r_[np.zeros(n_good, int), np.ones(n_bad, int)]
    return MethodOutput(scores, maps), labels, masks


def test_adaptive_threshold_separates_and_normalises_to_100():
    rng = np.random.default_rng(0)
    reference = MethodOutput(rng.normal(0, 1, 200), rng.normal(0, 1, (200, 8, 8)).astype(np.float32))
    test, labels, masks = _outputs(rng, 50, 50, shift=8.0)
    t = fit_thresholds(reference, test, labels, masks, quantile=0.99)
    assert test.scores[labels == 0].max() < t.threshold <= test.scores[labels == 1].min()
    assert t.normalize(np.array([t.threshold]))[0] == pytest.approx(100.0)
    assert t.manual_threshold == pytest.approx(np.quantile(reference.scores, 0.99))
    assert t.map_vmin < t.pixel_threshold < t.map_vmax
    # percentile: share of good reference scores below
    assert t.percentile(np.array([np.inf]))[0] == 100.0
    assert t.percentile(np.array([-np.inf]))[0] == 0.0


def test_without_anomalies_the_manual_threshold_decides():
    rng = np.random.default_rng(1)
    reference = MethodOutput(rng.normal(0, 1, 100), None)
    test = MethodOutput(rng.normal(0, 1, 20), None)
    t = fit_thresholds(reference, test, np.zeros(20, int), None, quantile=0.95)
    assert t.threshold == t.manual_threshold
    assert t.pixel_threshold is None and t.map_vmin is None


def test_ensemble_puts_parts_on_one_scale():
    rng = np.random.default_rng(2)
    good = {
        m: MethodOutput(rng.normal(loc, scale, 100), rng.normal(loc, scale, (100, 4, 4)).astype(np.float32))
        for m, loc, scale in (("msma_gmm", 50, 10), ("msma_flow", -3, 0.1), ("ddim", 0.2, 0.01))
    }
    standardizers = {m: Standardizer.fit(o) for m, o in good.items()}
    combined = ensemble_output(good, standardizers)
    # every part standardised on its own good images: the ensemble of good images is ~N(0, small)
    assert abs(combined.scores.mean()) < 0.2
    assert abs(combined.maps.mean()) < 0.2
    # an image anomalous for one method only moves the ensemble by about 1/3 of its z-score
    shifted = {m: MethodOutput(o.scores.copy(), o.maps.copy()) for m, o in good.items()}
    shifted["ddim"].scores[0] += 0.01 * 9
    delta = ensemble_output(shifted, standardizers).scores[0] - combined.scores[0]
    assert delta == pytest.approx(9 / 3, rel=0.15)
