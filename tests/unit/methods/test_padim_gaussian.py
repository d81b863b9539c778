"""PaDiM's per-position Gaussians and Mahalanobis distance against NumPy/SciPy, without the backbone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import mahalanobis as scipy_mahalanobis
from torch import nn

from diffad.components.settings import BackboneSettings
from diffad.core.errors import DataError
from diffad.methods.padim import model as padim
from diffad.methods.padim.model import PaDiM, mahalanobis
from diffad.methods.padim.settings import PadimSettings


class PixelFeatures(nn.Module):
    """Features = the image itself (one 'stage' with 3 channels at full resolution)."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x]


def test_mahalanobis_matches_scipy(monkeypatch):
    monkeypatch.setattr(padim, "POSITIONS_PER_CHUNK", 2)  # 5 positions in 3 chunks
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 4, 4))
    inv_cov = a @ a.transpose(0, 2, 1) + 0.1 * np.eye(4)  # SPD, one per position
    delta = rng.normal(size=(5, 3, 4))
    got = mahalanobis(torch.tensor(delta, dtype=torch.float32), torch.tensor(inv_cov, dtype=torch.float32))
    expected = [[scipy_mahalanobis(d, np.zeros(4), inv_cov[p]) for d in delta[p]] for p in range(5)]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4)


def test_fit_and_score_match_numpy():
    generator = torch.Generator().manual_seed(0)
    images = (torch.rand(12, 3, 4, 5, generator=generator) * 2 - 1) * torch.tensor([1.0, 0.5, 0.2]).view(
        3, 1, 1
    )
    backbone = BackboneSettings(batch_size=5)  # 3 batches
    model = PaDiM(PixelFeatures(), backbone, PadimSettings(dims=3, blur_sigma=0.0)).fit(
        images, seed=0
    )  # all channels
    test = torch.rand(2, 3, 4, 5, generator=generator) * 2 - 1
    scores, maps = model.score(test)

    x = images.numpy().transpose(2, 3, 0, 1).reshape(20, 12, 3)  # (P, N, d)
    for p in (0, 7, 19):
        cov = np.cov(x[p], rowvar=False) + 0.01 * np.eye(3)
        np.testing.assert_allclose(model.mean[p].numpy(), x[p].mean(axis=0), atol=1e-6)
        np.testing.assert_allclose(model.inv_cov[p].numpy(), np.linalg.inv(cov), rtol=1e-4, atol=1e-4)
        i, j = divmod(p, 5)
        for n in range(2):
            d = scipy_mahalanobis(test[n, :, i, j].numpy(), x[p].mean(axis=0), np.linalg.inv(cov))
            assert maps[n, i, j] == pytest.approx(d, rel=1e-4)
    np.testing.assert_allclose(scores, maps.reshape(2, -1).max(axis=1))


def test_channel_subset_is_seeded_and_sorted():
    images = torch.rand(4, 3, 2, 2) * 2 - 1
    settings = PadimSettings(dims=2)
    picks = [
        PaDiM(PixelFeatures(), None, settings).fit(images, seed=s).channel_index.tolist() for s in range(6)
    ]
    assert all(len(p) == 2 and p == sorted(set(p)) for p in picks)
    assert picks[0] == PaDiM(PixelFeatures(), None, settings).fit(images, seed=0).channel_index.tolist()
    assert len({tuple(p) for p in picks}) > 1


def test_one_image_is_not_enough():
    with pytest.raises(DataError, match="at least 2"):
        PaDiM(PixelFeatures()).fit(torch.zeros(1, 3, 4, 4))
