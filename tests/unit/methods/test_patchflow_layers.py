"""Log-determinants against autograd Jacobians, and exact inverses, for every PatchFlow layer."""

from __future__ import annotations

import pytest
import torch

from diffad.methods.msma_flow.layers import LULinear, MaskedAffineAutoregressive, SplineCoupling
from diffad.methods.msma_flow.model import PatchFlow
from diffad.methods.msma_flow.settings import MsmaFlowSettings
from diffad.methods.msma_flow.spline import rq_spline

L, P = 5, 8


def randomize(module: torch.nn.Module, std: float = 0.5, seed: int = 0) -> torch.nn.Module:
    """Overwrite every parameter with noise: zero-initialised conditioners would give the identity."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * std)
    return module.double()


def make_layer(kind: str) -> torch.nn.Module:
    if kind == "maf":
        return MaskedAffineAutoregressive(L, P, hidden=16)
    if kind == "coupling0":
        return SplineCoupling(L, P, parity=0, hidden=16, blocks=2, bins=8, tail_bound=3.0)
    if kind == "coupling1":
        return SplineCoupling(L, P, parity=1, hidden=16, blocks=2, bins=8, tail_bound=3.0)
    return LULinear(L, seed=3)


def samples(n: int = 4, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, L, generator=gen, dtype=torch.float64) * 2.5  # some values beyond the +-3 tails
    c = torch.randn(n, P, generator=gen, dtype=torch.float64)
    return x, c


def log_abs_det_autograd(fn, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    out = []
    for xi, ci in zip(x, c, strict=True):
        jac = torch.autograd.functional.jacobian(lambda v, ci=ci: fn(v[None], ci[None])[0], xi)
        out.append(torch.linalg.slogdet(jac)[1])
    return torch.stack(out)


@pytest.mark.parametrize("kind", ["maf", "coupling0", "coupling1", "lu"])
def test_layer_log_det_matches_autograd_jacobian(kind: str) -> None:
    layer = randomize(make_layer(kind))
    x, c = samples()
    _, log_det = layer(x, c)
    expected = log_abs_det_autograd(lambda v, ci: layer(v, ci)[0], x, c)
    assert expected.abs().max() > 0.05  # the random layer is not volume preserving: the test has teeth
    torch.testing.assert_close(log_det, expected, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("kind", ["maf", "coupling0", "coupling1", "lu"])
def test_layer_inverse_undoes_forward_with_matching_log_det(kind: str) -> None:
    layer = randomize(make_layer(kind))
    x, c = samples(n=16)
    z, log_det = layer(x, c)
    x_back, inv_log_det = layer.inverse(z, c)
    assert (z - x).abs().max() > 0.1  # not the identity
    torch.testing.assert_close(x_back, x, atol=1e-8, rtol=1e-6)
    torch.testing.assert_close(inv_log_det, -log_det, atol=1e-8, rtol=1e-6)


def test_maf_output_i_depends_only_on_earlier_inputs() -> None:
    layer = randomize(make_layer("maf"))
    x, c = samples(n=1)
    jac = torch.autograd.functional.jacobian(lambda v: layer(v[None], c)[0][0], x[0])
    assert torch.all(jac.triu(1) == 0)  # dz_i/dx_j = 0 for j > i
    assert jac.tril(-1).abs().sum() > 0


def test_spline_is_monotone_identity_in_tails_and_invertible() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.linspace(-6, 6, 241, dtype=torch.float64)
    theta = torch.randn(23, generator=gen, dtype=torch.float64).expand(241, 23) * 2
    y, log_det = rq_spline(x, theta, tail_bound=3.0)
    tails = x.abs() > 3
    assert torch.equal(y[tails], x[tails]) and torch.all(log_det[tails] == 0)
    assert torch.all(y.diff() > 0)
    assert (y[~tails] - x[~tails]).abs().max() > 0.1  # the bins really move values inside
    x_back, inv_log_det = rq_spline(y, theta, tail_bound=3.0, inverse=True)
    torch.testing.assert_close(x_back, x, atol=1e-9, rtol=0)
    torch.testing.assert_close(inv_log_det, -log_det)
    # continuity at the tail bound: the spline meets the identity
    edge, _ = rq_spline(torch.tensor([-3.0, 3.0], dtype=torch.float64), theta[:2], tail_bound=3.0)
    torch.testing.assert_close(edge, torch.tensor([-3.0, 3.0], dtype=torch.float64))


def test_zero_parameters_give_identity_spline() -> None:
    x = torch.linspace(-2.9, 2.9, 50, dtype=torch.float64)
    y, log_det = rq_spline(x, torch.zeros(50, 23, dtype=torch.float64), tail_bound=3.0)
    torch.testing.assert_close(y, x)
    torch.testing.assert_close(log_det, torch.zeros_like(x))


def small_flow() -> PatchFlow:
    cfg = MsmaFlowSettings(num_flows=2, hidden=16, blocks=1, pos_dim=P)
    return randomize(PatchFlow(L, cfg), std=0.3)


def test_whole_flow_log_det_and_inverse() -> None:
    flow = small_flow()
    x, c = samples()
    z, log_det = flow(x, c)
    expected = log_abs_det_autograd(lambda v, ci: flow(v, ci)[0], x, c)
    torch.testing.assert_close(log_det, expected, atol=1e-8, rtol=1e-6)
    torch.testing.assert_close(flow.inverse(z, c), x, atol=1e-7, rtol=1e-6)


def test_log_prob_is_a_normalised_density() -> None:
    """Integrate p(u | c) over a 2-D grid: a flow whose log-det were wrong would not integrate to 1."""
    flow = randomize(PatchFlow(2, MsmaFlowSettings(num_flows=2, hidden=8, blocks=1, pos_dim=4)), std=0.3)
    t = torch.linspace(-10, 10, 401, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)
    c = torch.full((1, 4), 0.3, dtype=torch.float64)
    with torch.no_grad():
        mass = flow.log_prob(grid, c).exp().sum() * (t[1] - t[0]) ** 2
    assert abs(mass.item() - 1) < 0.02


def test_context_broadcasts_over_images() -> None:
    flow = small_flow()
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(3, 4, L, generator=gen, dtype=torch.float64)  # (positions, images, L)
    c = torch.randn(3, 1, P, generator=gen, dtype=torch.float64)
    full = flow.log_prob(x.reshape(12, L), c.expand(3, 4, P).reshape(12, P)).reshape(3, 4)
    torch.testing.assert_close(flow.log_prob(x, c), full)
