"""AUROC and the ROC curve: hand cases, errors, and agreement with scikit-learn (ties included)."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from diffad.metrics.roc import auroc, roc_curve


def test_perfect_inverted_and_tied_rankings():
    labels = np.array([0, 0, 0, 1, 1])
    assert auroc(labels, np.array([0.1, 0.2, 0.3, 0.8, 0.9])) == 1.0
    assert auroc(labels, np.array([0.9, 0.8, 0.7, 0.2, 0.1])) == 0.0
    assert auroc(labels, np.full(5, 3.0)) == pytest.approx(0.5)


def test_one_tie_counts_half():
    # pairs (anomaly, good): (2 vs 1) right, (2 vs 2) tie, (3 vs 1) right, (3 vs 2) right -> 3.5 / 4
    assert auroc(np.array([0, 0, 1, 1]), np.array([1.0, 2.0, 2.0, 3.0])) == pytest.approx(3.5 / 4)


@pytest.mark.parametrize("labels", [np.zeros(4, int), np.ones(4, int)])
def test_one_class_only_is_a_clear_value_error(labels):
    with pytest.raises(ValueError, match="needs both good and anomalous"):
        auroc(labels, np.arange(4.0))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_raise(bad):
    with pytest.raises(ValueError, match="NaN or infinite"):
        auroc(np.array([0, 1, 0]), np.array([0.1, bad, 0.2]))


def test_bad_labels_and_shapes_raise():
    with pytest.raises(ValueError, match="0 \\(good\\) or 1"):
        auroc(np.array([0, 2, 1]), np.arange(3.0))
    with pytest.raises(ValueError, match="equal length"):
        auroc(np.array([0, 1]), np.arange(3.0))


@pytest.mark.parametrize("seed", range(20))
def test_agrees_with_sklearn_on_random_data_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 80))
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    scores = rng.integers(0, 6, n) * 0.5 if seed % 2 else rng.normal(size=n).astype(np.float32)
    assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    fpr, tpr, thr = roc_curve(labels, scores)
    sk_fpr, sk_tpr, sk_thr = sk_roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thr[1:], sk_thr[1:], rtol=1e-6)
    assert thr[0] == np.inf


def test_curve_shape_and_bool_labels():
    fpr, tpr, thr = roc_curve(np.array([False, True, True]), np.array([0.0, 1.0, 1.0]))
    np.testing.assert_array_equal(fpr, [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(tpr, [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(thr, [np.inf, 1.0, 0.0])
