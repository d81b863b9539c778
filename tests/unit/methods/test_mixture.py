"""Gaussian mixture over score norms: our scoring against scikit-learn, file round trip, search."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kstest
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

from diffad.core.errors import ArtifactError, ConfigError, DataError
from diffad.methods.msma_gmm.mixture import GMMModel, fit_gmm
from diffad.methods.msma_gmm.settings import MsmaGmmSettings


def norms_like(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """Positive, correlated, skewed 4-d features, like per-level score norms of good images."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 2))
    mix = np.array([[1.0, 0.5, 0.2, 0.0], [0.0, 0.4, 0.8, 1.0]])
    return np.exp(0.2 * latent @ mix + rng.normal(scale=0.05, size=(n, 4)) + shift) * [30, 10, 3, 1]


@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_neg_log_p_matches_sklearn(covariance: str) -> None:
    x = norms_like(300, 0)
    cfg = MsmaGmmSettings(n_components=3, covariance=covariance)
    model = fit_gmm(x, cfg, seed=4)
    scaler = StandardScaler().fit(x)
    gm = GaussianMixture(
        3,
        covariance_type=covariance,
        reg_covar=cfg.reg_covar,
        init_params="kmeans",
        max_iter=1000,
        random_state=4,
    ).fit(scaler.transform(x))
    probe = norms_like(50, 1, shift=0.1)
    # sklearn scores the scaled features; the density of the raw ones adds the scaler's log|det|
    expected = -gm.score_samples(scaler.transform(probe)) + np.log(scaler.scale_).sum()
    np.testing.assert_allclose(model.score(probe), expected, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("features", ["raw", "log"])
def test_density_integrates_to_one(features: str) -> None:
    x = np.random.default_rng(2).lognormal(1.0, 0.3, size=(400, 1))
    model = fit_gmm(x, MsmaGmmSettings(n_components=2, features=features), seed=0)
    grid = np.linspace(1e-3, 40, 200_001)[:, None]
    total = np.trapezoid(np.exp(model.log_prob(grid)), grid[:, 0])
    assert total == pytest.approx(1.0, abs=2e-3)


def test_save_load_round_trip_gives_identical_scores(tmp_path: Path) -> None:
    x = norms_like(200, 0)
    model = fit_gmm(x, MsmaGmmSettings(n_components=4, features="log"), seed=1)
    model.save(tmp_path / "gmm.json")
    loaded = GMMModel.load(tmp_path / "gmm.json")
    probe = norms_like(30, 5, shift=0.3)
    np.testing.assert_array_equal(loaded.score(probe), model.score(probe))
    np.testing.assert_array_equal(loaded.train_scores, model.train_scores)
    assert loaded.features == "log" and loaded.n_components == 4


def test_shifted_distribution_scores_worse() -> None:
    model = fit_gmm(norms_like(300, 0), MsmaGmmSettings(n_components=3), seed=0)
    good = model.score(norms_like(200, 1))
    shifted = model.score(norms_like(200, 2, shift=0.5))
    assert shifted.mean() > good.mean() + 1.0
    assert np.median(model.percentile(shifted)) > 90


def test_percentiles_of_fresh_good_images_are_uniform() -> None:
    model = fit_gmm(norms_like(2000, 0), MsmaGmmSettings(n_components=2), seed=0)
    np.testing.assert_allclose(np.sort(model.percentile(model.train_scores)), np.arange(2000) / 20)
    fresh = model.percentile(model.score(norms_like(1000, 9)))
    assert kstest(fresh / 100, "uniform").statistic < 0.06


def test_grid_search_finds_the_number_of_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0], [8.0, 8.0]])
    x = np.concatenate([c + rng.normal(size=(120, 2)) for c in centres]) + 20
    cfg = MsmaGmmSettings(search=True, search_components=(1, 2, 3, 4, 6, 8), cv_folds=4)
    model = fit_gmm(x, cfg, seed=0)
    assert model.n_components == 4
    table = {row["n_components"]: row for row in model.search}
    assert set(table) == {1, 2, 3, 4, 6, 8} and len(table[4]["folds"]) == 4
    assert table[4]["mean"] > table[2]["mean"] > table[1]["mean"]


def test_too_many_components_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="msma_gmm.n_components"):
        fit_gmm(norms_like(5, 0), MsmaGmmSettings(n_components=7), seed=0)


def test_search_skips_candidates_larger_than_a_fold() -> None:
    model = fit_gmm(
        norms_like(12, 0), MsmaGmmSettings(search=True, search_components=(1, 2, 10), cv_folds=3), 0
    )
    skipped = {row["n_components"] for row in model.search if row["skipped"]}
    assert skipped == {10} and model.n_components in (1, 2)


def test_wrong_feature_count_is_a_data_error() -> None:
    model = fit_gmm(norms_like(50, 0), MsmaGmmSettings(n_components=1), seed=0)
    with pytest.raises(DataError, match="4 features"):
        model.score(np.ones((3, 5)))


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda d: d.pop("means"),
        lambda d: d.update(weights=[0.9, 0.9]),
        lambda d: d.update(covariances=[[[-1.0] * 4] * 4] * len(d["weights"])),
        lambda d: d.update(format="something-else"),
    ],
)
def test_malformed_file_names_the_path(tmp_path: Path, corrupt) -> None:
    path = tmp_path / "gmm.json"
    fit_gmm(norms_like(50, 0), MsmaGmmSettings(n_components=2), seed=0).save(path)
    raw = json.loads(path.read_text())
    corrupt(raw)
    path.write_text(json.dumps(raw))
    with pytest.raises(ArtifactError, match="gmm.json"):
        GMMModel.load(path)


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "gmm.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="gmm.json"):
        GMMModel.load(tmp_path / "gmm.json")
    with pytest.raises(ArtifactError, match="absent.json"):
        GMMModel.load(tmp_path / "absent.json")
