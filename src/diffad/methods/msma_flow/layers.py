"""Invertible layers of PatchFlow, each conditioned on a context vector c (the position code).

Every layer maps data-side values ``x`` (..., L) to latent-side values ``z`` and returns
``(z, log|det dz/dx|)`` from ``forward``; ``inverse`` maps back and returns the log-determinant of
the inverse map. The context ``c`` (..., P) only needs to *broadcast* against ``x``: with
``x`` (n_pos, B, L) and ``c`` (n_pos, 1, P) the context projections run once per position, not once
per (position, image) pair, which is most of the cost saved in training.

Layers:
    MaskedAffineAutoregressive  z_i = (x_i - m_i(x_<i, c)) exp(-a_i(x_<i, c))   (MAF, Papamakarios 2017)
    SplineCoupling              z_B = RQS(x_B; theta(x_A, c)),  z_A = x_A      (Durkan et al. 2019)
    LULinear                    z = P (L U x + b)                                (Glow-style, LU factors)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from diffad.methods.msma_flow.spline import rq_spline, spline_params_count

LOG_SCALE_BOUND = 3.0  # MAF |a_i| <= 3 (soft clamp): one layer rescales by at most e^3


def soft_clamp(t: torch.Tensor, bound: float) -> torch.Tensor:
    """Smoothly squash ``t`` into (-bound, bound); identity near 0."""
    return bound * torch.tanh(t / bound)


def zero_(layer: nn.Linear) -> nn.Linear:
    """Zero a layer's weights and bias so the flow layer it feeds starts as the identity."""
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class MaskedLinear(nn.Linear):
    """Linear layer whose weight is multiplied by a fixed 0/1 ``mask`` (out, in)."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.to(torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """Masked autoencoder: output i (and i + L) depends only on inputs x_<i and on the context.

    Degrees: input i has degree i + 1; hidden units cycle through 1..L-1; a unit sees inputs of
    degree <= its own, an output of degree d sees hidden units of degree < d (Germain et al. 2015).
    """

    def __init__(self, features: int, context_features: int, hidden: int) -> None:
        super().__init__()
        d_in = torch.arange(1, features + 1)
        d_hid = torch.arange(hidden) % max(1, features - 1) + 1
        d_out = torch.cat([d_in, d_in])  # (shift, log-scale) per feature
        self.inp = MaskedLinear(d_hid[:, None] >= d_in[None, :])
        self.ctx = nn.Linear(context_features, hidden)
        self.mid = MaskedLinear(d_hid[:, None] >= d_hid[None, :])
        self.out = zero_(MaskedLinear(d_out[:, None] > d_hid[None, :]))
        self.ctx_out = zero_(nn.Linear(context_features, 2 * features))  # x_0 sees no hidden unit, only c

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.inp(x) + self.ctx(c))
        h = F.relu(self.mid(h))
        return self.out(h) + self.ctx_out(c)


class MaskedAffineAutoregressive(nn.Module):
    """MAF layer: density evaluation (x -> z) in one pass, the inverse in L passes."""

    def __init__(self, features: int, context_features: int, hidden: int) -> None:
        super().__init__()
        self.features = features
        self.made = MADE(features, context_features, hidden)

    def _params(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m, a = self.made(x, c).chunk(2, dim=-1)
        return m, soft_clamp(a, LOG_SCALE_BOUND)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m, a = self._params(x, c)
        return (x - m) * torch.exp(-a), -a.sum(-1)

    def inverse(self, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.zeros_like(z)
        for _ in range(self.features):  # after pass i, x_0..x_i are exact
            m, a = self._params(x, c)
            x = z * torch.exp(a) + m
        return x, a.sum(-1)


class ResidualBlock(nn.Module):
    """h + g(c) * W2 relu(W1 relu(h)): a pre-activation block gated by the context."""

    def __init__(self, hidden: int, context_features: int) -> None:
        super().__init__()
        self.lin1 = nn.Linear(hidden, hidden)
        self.lin2 = nn.Linear(hidden, hidden)
        self.gate = nn.Linear(context_features, hidden)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        t = self.lin2(F.relu(self.lin1(F.relu(h))))
        return h + t * torch.sigmoid(self.gate(c))


class ResidualNet(nn.Module):
    """Conditioner of a coupling layer: (x_A, c) -> spline parameters; zero output at init."""

    def __init__(
        self, in_features: int, out_features: int, context_features: int, hidden: int, blocks: int
    ) -> None:
        super().__init__()
        self.inp = nn.Linear(in_features, hidden)
        self.ctx = nn.Linear(context_features, hidden)
        self.blocks = nn.ModuleList(ResidualBlock(hidden, context_features) for _ in range(blocks))
        self.out = zero_(nn.Linear(hidden, out_features))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.inp(x) + self.ctx(c)
        for block in self.blocks:
            h = block(h, c)
        return self.out(F.relu(h))


class SplineCoupling(nn.Module):
    """Rational-quadratic spline coupling: features of one ``parity`` are transformed, the rest condition.

    ``parity`` 0 transforms even-indexed features (0, 2, ...), 1 the odd ones; alternating parities
    (plus the LU mixing between couplings) lets every feature be transformed.
    """

    def __init__(
        self,
        features: int,
        context_features: int,
        *,
        parity: int,
        hidden: int,
        blocks: int,
        bins: int,
        tail_bound: float,
    ) -> None:
        super().__init__()
        index = torch.arange(features)
        moved = index % 2 == parity
        self.register_buffer("idx_b", index[moved])  # transformed
        self.register_buffer("idx_a", index[~moved])  # identity, conditions the spline
        self.register_buffer("order", torch.argsort(torch.cat([index[~moved], index[moved]])))
        self.bins, self.tail_bound = bins, tail_bound
        n_params = int(moved.sum()) * spline_params_count(bins)
        self.net = ResidualNet(int((~moved).sum()), n_params, context_features, hidden, blocks)

    def _transform(
        self, x: torch.Tensor, c: torch.Tensor, inverse: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x_a, x_b = x[..., self.idx_a], x[..., self.idx_b]
        theta = self.net(x_a, c).unflatten(-1, (x_b.shape[-1], spline_params_count(self.bins)))
        y_b, log_det = rq_spline(x_b, theta, self.tail_bound, inverse=inverse)
        return torch.cat([x_a, y_b], dim=-1)[..., self.order], log_det.sum(-1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._transform(x, c, inverse=False)

    def inverse(self, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._transform(z, c, inverse=True)


class LULinear(nn.Module):
    """z = P (L U x + b): L unit lower-triangular, U upper with diagonal softplus(u) + eps > 0, P fixed.

    log|det| = sum_i log U_ii, independent of x. The permutation P is drawn from ``seed``.
    """

    EPS = 1e-3

    def __init__(self, features: int, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        perm = torch.randperm(features, generator=gen)
        self.register_buffer("perm", perm)
        self.register_buffer("inv_perm", torch.argsort(perm))
        bound = 1 / math.sqrt(features)
        self.lower = nn.Parameter(torch.empty(features, features).uniform_(-bound, bound, generator=gen))
        self.upper = nn.Parameter(torch.empty(features, features).uniform_(-bound, bound, generator=gen))
        self.diag = nn.Parameter(torch.full((features,), math.log(math.expm1(1 - self.EPS))))  # U_ii = 1
        self.bias = nn.Parameter(torch.zeros(features))

    def factors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(L, U, diag U) as dense matrices."""
        u_diag = F.softplus(self.diag) + self.EPS
        eye = torch.eye(self.lower.shape[0], device=self.lower.device)
        lower = torch.tril(self.lower, -1) + eye
        upper = torch.triu(self.upper, 1) + torch.diag(u_diag)
        return lower, upper, u_diag

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        lower, upper, u_diag = self.factors()
        z = (x @ (lower @ upper).T + self.bias)[..., self.perm]
        return z, u_diag.log().sum().expand(x.shape[:-1])

    def inverse(self, z: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        lower, upper, u_diag = self.factors()
        y = (z[..., self.inv_perm] - self.bias).reshape(-1, z.shape[-1])
        # x (L U)^T = y  <=>  v L^T = y, then x U^T = v
        v = torch.linalg.solve_triangular(lower.T, y, upper=True, left=False, unitriangular=True)
        x = torch.linalg.solve_triangular(upper.T, v, upper=False, left=False)
        return x.reshape(z.shape), -u_diag.log().sum().expand(z.shape[:-1])
