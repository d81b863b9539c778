"""Greedy k-center coreset and chunked nearest-neighbour search against brute force."""

from __future__ import annotations

import itertools

import pytest
import torch

from diffad.components import coreset
from diffad.components.coreset import greedy_coreset, nearest_neighbors, random_projection


def covering_radius(points: torch.Tensor, centers: torch.Tensor) -> float:
    """max over points of the distance to the nearest center (brute force)."""
    return float(torch.cdist(points.double(), points[centers].double()).min(dim=1).values.max())


def test_picks_the_farthest_points_first():
    cluster = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [0.1, 0.1], [0.05, 0.05]])
    outliers = torch.tensor([[10.0, 0.0], [0.0, 6.0], [-4.0, -4.0]])  # 10 > 6 > 5.66 from the cluster
    points = torch.cat([cluster, outliers])
    selected = greedy_coreset(points, k=4, start=0).tolist()
    assert selected == [0, 5, 6, 7]


@pytest.mark.parametrize("seed", range(5))
def test_covering_radius_is_within_twice_the_optimum(seed):
    points = torch.randn(11, 2, generator=torch.Generator().manual_seed(seed))
    k = 3
    optimum = min(covering_radius(points, torch.tensor(c)) for c in itertools.combinations(range(11), k))
    for start in range(11):
        selected = greedy_coreset(points, k, start=start)
        assert len(set(selected.tolist())) == k and int(selected[0]) == start
        assert covering_radius(points, selected) <= 2 * optimum + 1e-9


def test_k_at_least_n_keeps_everything():
    points = torch.randn(6, 3)
    assert greedy_coreset(points, k=6).tolist() == list(range(6))


def test_nearest_neighbors_match_brute_force_in_small_chunks(monkeypatch):
    monkeypatch.setattr(coreset, "CHUNK_ELEMENTS", 40)  # 40 // 17 = 2 queries per chunk
    generator = torch.Generator().manual_seed(3)
    bank = torch.randn(17, 5, generator=generator) * 3
    queries = torch.cat([torch.randn(9, 5, generator=generator) * 3, bank[[4, 11]]])
    distance, index = nearest_neighbors(queries, bank)
    brute = torch.cdist(queries.double(), bank.double())
    assert torch.equal(index, brute.argmin(dim=1))
    assert torch.allclose(distance.double(), brute.min(dim=1).values, atol=1e-5)
    assert distance[-2:].tolist() == [0.0, 0.0]  # queries that are in the bank


def test_random_projection_roughly_keeps_distances():
    generator = torch.Generator().manual_seed(0)
    points = torch.randn(40, 512, generator=generator)
    projected = random_projection(points, 256, generator)
    ratio = torch.pdist(projected) / torch.pdist(points)
    assert projected.shape == (40, 256)
    assert 0.8 < float(ratio.min()) and float(ratio.max()) < 1.2
