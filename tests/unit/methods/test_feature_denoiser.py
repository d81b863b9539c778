"""The feature-cell denoiser (msma_features): it learns where good cells are, and is reproducible."""

from __future__ import annotations

import torch

from diffad.methods.msma_features.feature_denoiser import train_feature_denoiser
from diffad.methods.msma_features.settings import MsmaFeaturesSettings

torch.set_num_threads(1)
CFG = MsmaFeaturesSettings(hidden=64, steps=400, batch_cells=512)


def two_clusters(n: int, seed: int) -> torch.Tensor:
    """(n, 8) standardised-like cells around +-1 on every channel."""
    generator = torch.Generator().manual_seed(seed)
    sign = torch.randint(0, 2, (n, 1), generator=generator) * 2.0 - 1.0
    return sign + 0.2 * torch.randn(n, 8, generator=generator)


def residual(denoiser, cells: torch.Tensor, sigma: float) -> torch.Tensor:
    with torch.no_grad():
        x = cells[:, :, None, None]
        return (denoiser(x, torch.full((len(cells),), sigma)) - x).flatten(1).norm(dim=1)


def test_it_pulls_cells_off_the_good_clusters_further_than_good_cells():
    denoiser, losses = train_feature_denoiser(two_clusters(4000, 0), CFG, seed=0, device=torch.device("cpu"))
    assert sum(losses[-50:]) < 0.6 * sum(losses[:50])
    good = two_clusters(200, 1)
    # never seen: +1 on half the channels and -1 on the others, or beyond the clusters (+-3)
    mixed = torch.tensor([1.0, -1.0]).repeat(4) * two_clusters(100, 2).sign()
    off = torch.cat([mixed, 3 * two_clusters(100, 3).sign()])
    for sigma in (0.1, 0.3, 1.0):
        assert residual(denoiser, off, sigma).min() > residual(denoiser, good, sigma).quantile(0.99)


def test_the_same_seed_gives_the_same_network():
    cells = two_clusters(1000, 0)
    short = MsmaFeaturesSettings(hidden=16, steps=20, batch_cells=64)
    first, _ = train_feature_denoiser(cells, short, seed=3, device=torch.device("cpu"))
    second, _ = train_feature_denoiser(cells, short, seed=3, device=torch.device("cpu"))
    other, _ = train_feature_denoiser(cells, short, seed=4, device=torch.device("cpu"))
    first, second, other = (m.state_dict().values() for m in (first, second, other))
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(not torch.equal(a, c) for a, c in zip(first, other, strict=True))


def test_a_cell_is_denoised_alone_whatever_the_rest_of_the_map():
    # trained on single cells, scored on whole grids: nothing may pool over the grid
    denoiser, _ = train_feature_denoiser(
        two_clusters(500, 0),
        MsmaFeaturesSettings(hidden=16, steps=5, batch_cells=64),
        seed=0,
        device=torch.device("cpu"),
    )
    grid = torch.randn(1, 8, 4, 4) * 3
    cells = grid.permute(0, 2, 3, 1).reshape(16, 8, 1, 1)
    with torch.no_grad():
        whole = denoiser(grid, torch.tensor([0.5])).permute(0, 2, 3, 1).reshape(16, 8, 1, 1)
        alone = denoiser(cells, torch.full((16,), 0.5))
    torch.testing.assert_close(whole, alone, rtol=1e-5, atol=1e-5)
