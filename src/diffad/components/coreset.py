"""Greedy k-center coreset selection and chunked nearest-neighbour search (PatchCore, Roth et al. 2022).

Notation (paper -> code):
    M        features     all patch features of the good images, (N, D)
    M_C      selected     indices of the coreset, (k,)
    psi      projection   random linear map R^D -> R^d used only to pick M_C (Johnson-Lindenstrauss)
    min_dist min_sq       squared distance of every point to its nearest selected point, (N,)

Greedy k-center (Sener & Savarese 2018; PatchCore Alg. 1): start from one (seeded) point, then
repeatedly add the point farthest from everything selected so far. The covering radius of the result
is at most twice the optimal one. Each step costs one matrix-vector product over the N points
(float32, nothing larger than N floats is allocated), so the whole selection is O(N k D) time and
O(N) extra memory.
"""

from __future__ import annotations

import torch

CHUNK_ELEMENTS = 1 << 24  # distance-matrix entries per chunk (64 MiB of float32)


def random_projection(features: torch.Tensor, dim: int, generator: torch.Generator) -> torch.Tensor:
    """(N, D) -> (N, dim) with a Gaussian matrix scaled by 1/sqrt(dim) (distances kept in expectation)."""
    psi = torch.randn(features.shape[1], dim, generator=generator) / dim**0.5
    return features @ psi.to(features.device, features.dtype)


def greedy_coreset(features: torch.Tensor, k: int, start: int = 0) -> torch.Tensor:
    """Indices (k,) of a greedy k-center subset of ``features`` (N, D), beginning with ``start``.

    Returns all indices when ``k >= N``.
    """
    n = features.shape[0]
    if k >= n:
        return torch.arange(n, device=features.device)
    features = features.float()
    sq_norm = (features * features).sum(dim=1)  # ||m||^2, so ||m - c||^2 = ||m||^2 - 2 m.c + ||c||^2
    min_sq = torch.full((n,), float("inf"), device=features.device)
    selected = torch.empty(k, dtype=torch.long, device=features.device)
    index = torch.tensor(start, device=features.device)
    for i in range(k):
        selected[i] = index
        sq_dist = torch.addmv(sq_norm, features, features[index], alpha=-2).add_(sq_norm[index])
        torch.minimum(min_sq, sq_dist, out=min_sq)
        index = torch.argmax(min_sq)  # farthest point from the current coreset (Alg. 1, line 4)
    return selected


def nearest_neighbors(queries: torch.Tensor, bank: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean distance (Q,) and index (Q,) of the nearest row of ``bank`` (K, D) for ``queries`` (Q, D).

    The search uses ||q||^2 - 2 q.m + ||m||^2 in chunks of queries (bounded memory); the returned
    distance is recomputed exactly as ||q - m*||, so a query that is in the bank gets 0.
    """
    bank_sq = (bank * bank).sum(dim=1)
    rows = max(1, CHUNK_ELEMENTS // max(1, bank.shape[0]))
    index = torch.empty(queries.shape[0], dtype=torch.long, device=queries.device)
    for start in range(0, queries.shape[0], rows):
        chunk = queries[start : start + rows]
        sq_dist = torch.addmm(bank_sq, chunk, bank.T, alpha=-2)  # + ||q||^2 does not change the argmin
        index[start : start + rows] = sq_dist.argmin(dim=1)
    distance = (queries - bank[index]).norm(dim=1)
    return distance, index
