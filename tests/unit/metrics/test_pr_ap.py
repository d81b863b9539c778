"""Average precision and the PR curve against hand cases and scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve

from diffad.metrics.pr import average_precision, pr_curve


def test_hand_cases():
    labels = np.array([0, 0, 1, 1])
    assert average_precision(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    # inverted: positives at ranks 3 and 4 -> AP = 0.5 * 1/3 + 0.5 * 2/4
    assert average_precision(labels, np.array([0.9, 0.8, 0.2, 0.1])) == pytest.approx(0.5 / 3 + 0.5 * 0.5)
    # all tied: one step to recall 1 at precision = prevalence
    assert average_precision(labels, np.zeros(4)) == pytest.approx(0.5)


def test_one_class_only_raises():
    with pytest.raises(ValueError, match="needs both good and anomalous"):
        average_precision(np.zeros(3, int), np.arange(3.0))


@pytest.mark.parametrize("seed", range(20))
def test_agrees_with_sklearn(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(4, 80))
    labels = rng.integers(0, 2, n)
    labels[:2] = [1, 0]
    scores = rng.integers(0, 5, n).astype(float) if seed % 2 else rng.random(n)
    assert average_precision(labels, scores) == pytest.approx(
        average_precision_score(labels, scores), abs=1e-12
    )
    for ours, theirs in zip(pr_curve(labels, scores), precision_recall_curve(labels, scores), strict=True):
        np.testing.assert_allclose(ours, theirs)
