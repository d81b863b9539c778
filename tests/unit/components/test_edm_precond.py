"""EDM preconditioning, the Karras schedule and the UNet presets against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from diffad.components.denoiser.precond import EDMPrecond, edm_coefficients
from diffad.components.denoiser.schedule import karras_sigmas
from diffad.components.denoiser.unet import PRESETS, UNetSpec, build_denoiser
from diffad.core.errors import ConfigError

# sigma: (c_skip, c_out, c_in, c_noise) for sigma_data = 0.5, worked out by hand
HAND = {
    0.5: (0.25 / 0.5, 0.25 / math.sqrt(0.5), 1 / math.sqrt(0.5), math.log(0.5) / 4),
    1.0: (0.2, 0.5 / math.sqrt(1.25), 1 / math.sqrt(1.25), 0.0),
    2.0: (0.25 / 4.25, 1 / math.sqrt(4.25), 1 / math.sqrt(4.25), math.log(2) / 4),
}


@pytest.mark.parametrize("sigma", sorted(HAND))
def test_coefficients_match_hand_values(sigma: float) -> None:
    got = edm_coefficients(torch.tensor(sigma, dtype=torch.float64), 0.5)
    for value, expected in zip(got, HAND[sigma], strict=True):
        assert float(value) == pytest.approx(expected, rel=1e-12, abs=1e-12)


class ZeroNet(nn.Module):
    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def test_zero_network_gives_c_skip_times_x() -> None:
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.5, 1.0, 2.0])
    out = EDMPrecond(ZeroNet(), sigma_data=0.5)(x, sigma)
    c_skip = torch.tensor([HAND[s][0] for s in (0.5, 1.0, 2.0)]).view(-1, 1, 1, 1)
    torch.testing.assert_close(out, c_skip * x)


def test_untrained_unet_starts_at_c_skip_times_x() -> None:
    """The zero-initialised output layer makes a fresh denoiser exactly D = c_skip x."""
    denoiser = build_denoiser("xxs", 16)
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = denoiser(x, torch.tensor([0.5, 2.0]))
    torch.testing.assert_close(out, torch.tensor([HAND[0.5][0], HAND[2.0][0]]).view(-1, 1, 1, 1) * x)


def test_karras_endpoints_and_monotone() -> None:
    sigmas = karras_sigmas(20, 0.1, 64.0, rho=7.0)
    assert sigmas.shape == (20,)
    assert float(sigmas[0]) == pytest.approx(64.0)
    assert float(sigmas[-1]) == pytest.approx(0.1)
    assert bool((sigmas[1:] < sigmas[:-1]).all())
    # the midpoint in sigma^(1/rho) is the average of the endpoints' roots
    mid = karras_sigmas(3, 0.1, 64.0, rho=7.0)[1]
    assert float(mid) == pytest.approx(((64.0 ** (1 / 7) + 0.1 ** (1 / 7)) / 2) ** 7)


def test_presets_grow_and_resolution_is_checked() -> None:
    sizes = [sum(p.numel() for p in build_denoiser(name, 64).parameters()) for name in PRESETS]
    assert sizes == sorted(sizes)
    assert 0.5e6 < sizes[list(PRESETS).index("xs")] < 3e6
    with pytest.raises(ConfigError, match="train_denoiser.resolution"):
        build_denoiser("xs", 30)  # 3 levels need a multiple of 4
    with pytest.raises(ConfigError, match="preset"):
        build_denoiser("xl", 64)


def test_custom_spec_runs_on_other_sizes() -> None:
    denoiser = build_denoiser(UNetSpec(widths=(8, 16), attention=True, emb=16, fourier=8, heads=2), 8)
    x = torch.randn(2, 3, 12, 20)
    with torch.no_grad():
        assert denoiser(x, 1.0).shape == x.shape
