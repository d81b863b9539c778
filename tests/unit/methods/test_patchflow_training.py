"""PatchFlow training and scoring on synthetic patch norms with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffad.core.errors import ArtifactError, ConfigError, DataError
from diffad.methods.msma_flow import training
from diffad.methods.msma_flow.model import PatchFlow, load_patchflow, save_patchflow
from diffad.methods.msma_flow.position import positional_encoding_2d
from diffad.methods.msma_flow.settings import MsmaFlowSettings
from diffad.methods.msma_flow.training import (
    BestCheckpoint,
    image_scores_from_nll,
    patch_nll,
    train_patchflow,
)

SMALL = dict(num_flows=1, hidden=32, blocks=1, pos_dim=16, batch_size=16, positions_per_step=64, lr=3e-3)
SIGMA = np.array([0.3, 0.5, 0.8])  # per-feature std of the log-norms


def position_mean(h: int, w: int, L: int) -> np.ndarray:
    """Position-dependent mean of the log-norms, (L, h, w), varying by several sigma across the grid."""
    i, j = np.mgrid[0:h, 0:w]
    return np.stack([1.5 * np.sin(i / 1.5 + k) + 1.5 * np.cos(j / 2.0 - k) for k in range(L)])


def gaussian_norms(n: int, h: int, w: int, seed: int) -> np.ndarray:
    """Norms r with log r ~ N(mean(position), diag SIGMA^2), independent over positions: (n, L, h, w)."""
    rng = np.random.default_rng(seed)
    L = len(SIGMA)
    log_r = position_mean(h, w, L)[None] + SIGMA[None, :, None, None] * rng.standard_normal((n, L, h, w))
    return np.exp(log_r).astype(np.float32)


def test_training_recovers_the_log_likelihood_of_a_known_gaussian() -> None:
    h = w = 6
    cfg = MsmaFlowSettings(**SMALL, epochs=30, patience=30)
    result = train_patchflow(gaussian_norms(120, h, w, seed=0), cfg, seed=0, log=lambda _: None)
    model = result.model

    # normalisation stats are those of the log-norms: pooled over positions, var = var(mean) + sigma^2
    mu = position_mean(h, w, 3).reshape(3, -1)
    pooled_std = np.sqrt(mu.var(axis=1) + SIGMA**2)
    np.testing.assert_allclose(model.feature_scale.numpy(), pooled_std, rtol=0.05)
    np.testing.assert_allclose(model.feature_loc.numpy(), mu.mean(axis=1), atol=0.05)

    # true NLL of u = (log r - loc) / scale: -log N(log r) - sum log scale; per dimension
    true_nll = (0.5 * np.log(2 * np.pi * np.e * SIGMA**2).sum() - np.log(pooled_std).sum()) / 3
    blind_nll = 0.5 * np.log(2 * np.pi * np.e) * 1  # a position-blind fit: N(0, 1) per normalised dim
    assert blind_nll - true_nll > 0.5  # ignoring the position would fail the check below

    held_out = gaussian_norms(200, h, w, seed=1)
    nll = patch_nll(model, held_out).mean() / 3
    assert abs(nll - true_nll) < 0.1, (nll, true_nll)
    assert result.history[-1]["val_nll"] == pytest.approx(nll, abs=0.15)


def test_nll_map_peaks_where_a_patch_is_out_of_place() -> None:
    """The defect patch holds a vector that is normal *elsewhere*: only a position-aware flow flags it."""
    h, w = 8, 8
    cfg = MsmaFlowSettings(**SMALL, epochs=12, patience=12)
    model = train_patchflow(gaussian_norms(80, h, w, seed=2), cfg, seed=0, log=lambda _: None).model
    test = gaussian_norms(2, h, w, seed=3)
    test[0, :, 5, 2] = test[0, :, 1, 6]  # painted defect at row 5, column 2
    test[0, :, 5, 3] = test[0, :, 1, 7]
    nll = patch_nll(model, test, batch_size=1)
    assert nll.shape == (2, h, w)
    row, col = np.unravel_index(nll[0].argmax(), (h, w))
    assert (row, col) in {(5, 2), (5, 3)}
    scores = image_scores_from_nll(nll, how="topk_mean", k=2)
    assert scores[0] > scores[1] + 2


def test_best_so_far_checkpoint_is_kept_not_better_than_previous() -> None:
    model = torch.nn.Linear(1, 1, bias=False)
    keeper = BestCheckpoint(patience=3)
    for epoch, val in enumerate([5.0, 3.0, 4.0, 3.5, 6.0], start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        keeper.update(epoch, val, model)
    # epoch 4 beat its predecessor (3.5 < 4) but not the best (3.0 at epoch 2)
    assert keeper.best_epoch == 2 and keeper.best == 3.0
    assert keeper.should_stop  # epochs 3, 4, 5 without a new best
    keeper.restore(model)
    assert model.weight.item() == 2.0


def test_nan_is_never_best_and_all_nan_is_an_error() -> None:
    model = torch.nn.Linear(1, 1)
    keeper = BestCheckpoint(patience=5)
    keeper.update(1, math.nan, model)
    with pytest.raises(DataError, match="never finite"):
        keeper.restore(model)


def test_training_returns_the_best_epoch_and_stops_early(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inject a validation curve that goes down then up; record the weights seen at each epoch."""
    curve = iter([3.0, 2.0, 2.5, 2.6, 2.7, 1.0])
    states = []

    def scripted_val(model, u, codes, positions):
        states.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(curve)

    monkeypatch.setattr(training, "mean_nll", scripted_val)
    cfg = MsmaFlowSettings(**SMALL, epochs=6, patience=3)
    result = train_patchflow(gaussian_norms(20, 4, 4, seed=0), cfg, seed=0, log=lambda _: None)
    assert result.best_epoch == 2 and result.stopped_early
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4, 5]
    best = states[1]
    assert any(not torch.equal(best[k], states[-1][k]) for k in best)  # the weights did move afterwards
    for k, v in result.model.state_dict().items():
        torch.testing.assert_close(v, best[k])


def test_scoring_in_chunks_matches_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    model = PatchFlow(3, MsmaFlowSettings(**SMALL))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(0)) * 0.1)
    norms = gaussian_norms(5, 3, 4, seed=0)
    whole = patch_nll(model, norms, batch_size=5)
    monkeypatch.setattr(training, "PAIRS_PER_CHUNK", 7)
    np.testing.assert_allclose(patch_nll(model, norms, batch_size=2), whole, rtol=1e-5, atol=1e-5)
    # and each entry is the NLL of that image's vector at that position
    u = model.normalize(torch.from_numpy(norms[3, :, 2, 1]))
    code = positional_encoding_2d(3, 4, 16)[2 * 4 + 1]
    assert whole[3, 2, 1] == pytest.approx(-model.log_prob(u[None], code[None]).item(), rel=1e-5)


def test_image_scores() -> None:
    nll = np.zeros((2, 2, 3))
    nll[0] = [[1, 5, 2], [3, 0, 4]]
    nll[1] = 7
    np.testing.assert_allclose(image_scores_from_nll(nll, "max"), [5, 7])
    np.testing.assert_allclose(image_scores_from_nll(nll, "topk_mean", k=3), [4, 7])
    np.testing.assert_allclose(image_scores_from_nll(nll, "topk_mean", k=100), [2.5, 7])
    with pytest.raises(ConfigError, match="median"):
        image_scores_from_nll(nll, "median")


def test_save_load_round_trip_and_errors(tmp_path) -> None:
    cfg = MsmaFlowSettings(**SMALL, epochs=1)
    norms = gaussian_norms(10, 4, 4, seed=0)
    model = train_patchflow(norms, cfg, seed=0, log=lambda _: None).model
    path = tmp_path / "flow" / "flow.safetensors"
    save_patchflow(model, path)
    loaded = load_patchflow(path)
    assert loaded.cfg == cfg and tuple(loaded.grid.tolist()) == (4, 4)
    np.testing.assert_array_equal(patch_nll(loaded, norms), patch_nll(model, norms))

    with pytest.raises(ArtifactError, match="missing.safetensors"):
        load_patchflow(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ArtifactError, match="bad.safetensors"):
        load_patchflow(bad)


def test_scoring_rejects_mismatched_inputs() -> None:
    model = PatchFlow(3, MsmaFlowSettings(**SMALL))
    model.grid.copy_(torch.tensor([4, 4]))
    with pytest.raises(DataError, match="noise levels"):
        patch_nll(model, np.ones((1, 5, 4, 4), np.float32))
    with pytest.raises(DataError, match="grid 4x5"):
        patch_nll(model, np.ones((1, 3, 4, 5), np.float32))
    with pytest.raises(DataError, match="NaN"):
        train_patchflow(np.full((4, 3, 2, 2), np.nan, np.float32), MsmaFlowSettings(**SMALL), seed=0)


def test_without_validation_split_the_training_nll_selects() -> None:
    cfg = MsmaFlowSettings(**SMALL, epochs=3, val_fraction=0.0)
    result = train_patchflow(gaussian_norms(8, 3, 3, seed=0), cfg, seed=0, log=lambda _: None)
    assert all(math.isnan(r["val_nll"]) for r in result.history)
    train = [r["train_nll"] for r in result.history]
    assert result.best_epoch == int(np.argmin(train)) + 1 and result.best_nll == min(train)
