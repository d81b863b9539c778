"""F1 at a threshold and the adaptive (F1-maximising) threshold."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from diffad.metrics.f1 import best_f1, f1_at


def test_f1_at_hand_case():
    labels = np.array([0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.6, 0.4, 0.7, 0.9])
    # threshold 0.5: predicted {0.6, 0.7, 0.9} -> TP 2, FP 1, FN 1 -> F1 = 4 / 6
    assert f1_at(labels, scores, 0.5) == pytest.approx(4 / 6)
    # the threshold itself counts as anomalous (score >= threshold)
    assert f1_at(labels, scores, 0.4) == pytest.approx(2 * 3 / (2 * 3 + 1))
    assert f1_at(labels, scores, 10.0) == 0.0


def test_best_f1_hand_case():
    labels = np.array([0, 1, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.5, 0.6, 0.9])
    # F1 = 2TP / (2TP + FP + FN) at t = 0.9, 0.6, 0.5, 0.3, 0.2, 0.1:
    #      2/4, 4/5, 4/6, 4/7, 6/8, 6/9  -> best 0.8 at t = 0.6
    f1, threshold = best_f1(labels, scores)
    assert f1 == pytest.approx(0.8)
    assert threshold == 0.6


def test_best_f1_separable_gives_one_at_lowest_anomaly_score():
    f1, threshold = best_f1(np.array([0, 0, 1, 1]), np.array([0.0, 1.0, 2.0, 3.0]))
    assert (f1, threshold) == (1.0, 2.0)


@pytest.mark.parametrize("seed", range(10))
def test_best_f1_is_the_max_over_all_scores_and_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 40)
    labels[0] = 1
    scores = rng.integers(0, 8, 40).astype(float)
    f1, threshold = best_f1(labels, scores)
    brute = max(f1_score(labels, scores >= t) for t in np.unique(scores))
    assert f1 == pytest.approx(brute)
    assert f1_at(labels, scores, threshold) == pytest.approx(f1)
    assert f1_score(labels, scores >= threshold) == pytest.approx(f1)


def test_no_anomalies_raises_but_no_good_is_fine():
    with pytest.raises(ValueError, match="needs both good and anomalous"):
        best_f1(np.zeros(3, int), np.arange(3.0))
    assert f1_at(np.ones(3, int), np.arange(3.0), 0.0) == 1.0
