"""Threshold normalisation: threshold -> 100, clipping, monotone, invertible, negative scores."""

import numpy as np
import pytest

from diffad.metrics.normalize import ScoreNormalizer, denormalize_scores, normalize_scores


def test_threshold_maps_to_exactly_100_and_clips():
    out = normalize_scores(np.array([-5.0, 0.0, 0.35, 0.7, 7.0, 70.0]), threshold=0.7)
    assert out[3] == 100.0
    assert out[0] == 0.0 and out[1] == 0.0
    assert out[2] == pytest.approx(50.0)
    assert out[4] == pytest.approx(1000.0) and out[5] == 1000.0


def test_monotone_non_decreasing():
    raw = np.sort(np.random.default_rng(0).normal(size=200) * 3)
    out = normalize_scores(raw, threshold=1.3, low=-2.0)
    assert np.all(np.diff(out) >= 0)
    assert out.min() >= 0 and out.max() <= 1000


def test_round_trip_with_negative_scores():
    good = np.array([-12.0, -9.5, -8.0, -7.0])  # e.g. log-likelihood-like scores
    norm = ScoreNormalizer.fit(good, threshold=-7.5)
    assert norm.low == -12.0
    assert norm(np.array([-7.5]))[0] == pytest.approx(100.0)
    assert norm(np.array([-12.0]))[0] == 0.0
    raw = np.array([-11.0, -7.5, -3.0])
    np.testing.assert_allclose(norm.invert(norm(raw)), raw)
    assert ScoreNormalizer.from_dict(norm.to_dict()) == norm


def test_nonnegative_good_scores_give_quadra_formula():
    norm = ScoreNormalizer.fit(np.array([0.5, 1.0, 2.0]), threshold=2.0)
    assert norm.low == 0.0
    np.testing.assert_allclose(norm(np.array([1.0, 4.0, 30.0])), [50.0, 200.0, 1000.0])
    np.testing.assert_allclose(denormalize_scores(np.array([50.0]), 2.0), [1.0])


@pytest.mark.parametrize(("threshold", "low"), [(0.0, 0.0), (-1.0, 0.0), (np.nan, 0.0), (1.0, 2.0)])
def test_threshold_not_above_low_raises(threshold, low):
    with pytest.raises(ValueError, match="threshold > low"):
        normalize_scores(np.ones(3), threshold, low)


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="threshold, low"):
        ScoreNormalizer.from_dict({"threshold": 1.0, "low": 0.0, "scale": 2.0})
