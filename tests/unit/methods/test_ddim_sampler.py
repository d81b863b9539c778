"""The deterministic sampler on Gaussian data, where the probability-flow ODE has a closed form."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from diffad.components.denoiser.sampler import sample, sampling_sigmas

MU, S = 0.3, 0.5  # data: every pixel ~ N(MU, S^2), independent


class GaussianDenoiser(nn.Module):
    """The exact denoiser of N(MU, S^2) data: E[x0 | x_sigma] = MU + S^2 / (S^2 + sigma^2) (x - MU)."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))  # gives the module a device

    def forward(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        return MU + S**2 / (S**2 + torch.as_tensor(sigma) ** 2) * (x - MU)


def exact_solution(x_start: torch.Tensor, sigma_max: float) -> torch.Tensor:
    """ODE solution at sigma = 0: x(sigma) - MU scales with sqrt(S^2 + sigma^2)."""
    return MU + S / math.sqrt(S**2 + sigma_max**2) * (x_start - MU)


def max_error(heun: bool, steps: int) -> float:
    shape, sigma_max = (4, 3, 8, 8), 80.0
    x_start = torch.randn(shape, generator=torch.Generator().manual_seed(0)) * sigma_max
    out = sample(
        GaussianDenoiser(),
        shape,
        steps=steps,
        sigma_max=sigma_max,
        heun=heun,
        generator=torch.Generator().manual_seed(0),
    )
    return float((out - exact_solution(x_start, sigma_max)).abs().max())


@pytest.mark.parametrize(("heun", "steps", "tol"), [(True, 100, 5e-3), (False, 1000, 1e-2)])
def test_sampler_follows_the_probability_flow_ode(heun: bool, steps: int, tol: float) -> None:
    assert max_error(heun, steps) < tol


@pytest.mark.parametrize(("heun", "order"), [(True, 2), (False, 1)])
def test_error_shrinks_with_the_order_of_the_method(heun: bool, order: int) -> None:
    """Doubling the steps divides the error by about 2^order (Euler = DDIM: 1, Heun: 2)."""
    ratio = max_error(heun, 100) / max_error(heun, 200)
    assert 2**order * 0.75 < ratio < 2**order * 1.35


def test_samples_have_the_data_distribution() -> None:
    out = sample(
        GaussianDenoiser(), (64, 3, 16, 16), steps=32, heun=True, generator=torch.Generator().manual_seed(1)
    )
    assert float(out.mean()) == pytest.approx(MU, abs=0.01)
    assert float(out.std()) == pytest.approx(S, abs=0.01)


def test_euler_step_is_ddim_with_a_constant_denoiser() -> None:
    """D = m for every input: each step keeps x - m proportional to sigma, and ends exactly at m."""
    m = torch.full((1, 3, 4, 4), 0.25)

    class Constant(GaussianDenoiser):
        def forward(self, x, sigma):
            return m.expand_as(x)

    out = sample(Constant(), (2, 3, 4, 4), steps=5, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(out, m.expand(2, 3, 4, 4))
    sigmas = sampling_sigmas(5, 0.002, 80.0, 7.0)
    assert sigmas[0] == pytest.approx(80.0) and sigmas[-2] == pytest.approx(0.002) and sigmas[-1] == 0.0
