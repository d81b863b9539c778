"""Guided DDIM reconstruction against DDAD's own (variance-preserving) equations; maps and tiling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from diffad.components.denoiser.precond import EDMPrecond
from diffad.methods.ddim.reconstruction import DDIMDetector, combine_maps, feature_distance, tile_starts
from diffad.methods.ddim.sampling import reconstruct, reconstruction_sigmas
from diffad.methods.ddim.settings import DdimSettings


class SmallNet(nn.Module):
    """A fixed nonlinear F(x, c_noise), so that D depends on x and sigma in a non-trivial way."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.3)
            self.conv.bias.copy_(torch.randn(3, generator=g) * 0.1)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x)) * (1 + c_noise.view(-1, 1, 1, 1))


def ddad_vp_reference(
    denoiser: nn.Module, y: torch.Tensor, cfg: DdimSettings, generator: torch.Generator
) -> torch.Tensor:
    """DDAD written as in the paper, in VP variables x_t = sqrt(abar) x_sigma, abar = 1 / (1 + sigma^2)."""
    sigmas = reconstruction_sigmas(cfg)
    abar = [1 / (1 + s**2) for s in sigmas]
    w = cfg.guidance
    n = torch.randn((1, *y.shape[1:]), generator=generator)
    x_t = math.sqrt(abar[0]) * y + math.sqrt(1 - abar[0]) * n
    for i in range(len(sigmas) - 1):
        a, a_next, sigma = abar[i], abar[i + 1], sigmas[i]
        with torch.no_grad():
            x0 = denoiser(x_t / math.sqrt(a), sigma)
        eps = (x_t / math.sqrt(a) - x0) / sigma  # eps_theta(x_t) of the equivalent VP model
        y_t = math.sqrt(a) * y + math.sqrt(1 - a) * eps
        eps_hat = eps - w * math.sqrt(1 - a) * (y_t - x_t)
        x0_hat = (x_t - math.sqrt(1 - a) * eps_hat) / math.sqrt(a)
        sigma_t = cfg.eta * math.sqrt((1 - a_next) / (1 - a) * (1 - a / a_next))
        x_t = math.sqrt(a_next) * x0_hat + math.sqrt(max(1 - a_next - sigma_t**2, 0.0)) * eps_hat
        if sigma_t > 0:
            x_t = x_t + sigma_t * torch.randn((1, *y.shape[1:]), generator=generator)
    return x_t  # abar = 1 at sigma = 0


@pytest.mark.parametrize(("guidance", "eta"), [(0.0, 0.0), (2.0, 0.0), (1.5, 1.0)])
def test_reconstruction_matches_ddad_vp_equations(guidance: float, eta: float) -> None:
    denoiser = EDMPrecond(SmallNet())
    y = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    cfg = DdimSettings(sigma_start=1.0, steps=5, guidance=guidance, eta=eta)
    got = reconstruct(denoiser, y, cfg, torch.Generator().manual_seed(7))
    expected = ddad_vp_reference(denoiser, y, cfg, torch.Generator().manual_seed(7))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_guidance_pulls_the_reconstruction_toward_the_input() -> None:
    denoiser = EDMPrecond(SmallNet())
    y = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1

    def gap(w: float) -> float:
        cfg = DdimSettings(sigma_start=2.0, steps=8, guidance=w)
        return float((reconstruct(denoiser, y, cfg, torch.Generator().manual_seed(0)) - y).abs().mean())

    assert gap(0.0) > gap(1.0) > gap(4.0)


def test_combine_maps_fixed_scale() -> None:
    feature, pixel = torch.rand(2, 3, 4), torch.rand(2, 3, 4)
    torch.testing.assert_close(combine_maps(feature, pixel, 0.5, pixel_scale=3.0), feature + 1.5 * pixel)


def test_combine_maps_per_image() -> None:
    feature = torch.tensor([[[0.0, 2.0]], [[1.0, 0.5]]])  # (2, 1, 2)
    pixel = torch.tensor([[[4.0, 1.0]], [[0.2, 0.1]]])
    out = combine_maps(feature, pixel, pixel_weight=0.5)
    # image 0: ratio 2 / 4; image 1: ratio 1 / 0.2
    expected = torch.tensor(
        [[[0 + 0.5 * 0.5 * 4, 2 + 0.5 * 0.5 * 1]], [[1 + 0.5 * 5 * 0.2, 0.5 + 0.5 * 5 * 0.1]]]
    )
    torch.testing.assert_close(out, expected)


def test_feature_distance_is_zero_for_equal_and_two_for_opposite_features() -> None:
    y = torch.rand(1, 3, 8, 8) + 0.1
    features = lambda x: [x, F.avg_pool2d(x, 2)]  # noqa: E731 - two "blocks"
    assert float(feature_distance(features, y, y).abs().max()) < 1e-6
    torch.testing.assert_close(feature_distance(features, y, -y), torch.full((1, 8, 8), 4.0))


def test_tile_starts_cover_evenly() -> None:
    assert tile_starts(64, 64) == [0]
    assert tile_starts(128, 64) == [0, 64]
    assert tile_starts(100, 64) == [0, 36]  # overlapping by 28
    assert tile_starts(200, 64) == [0, 45, 91, 136]


class ZeroDenoiser(nn.Module):
    """D = 0: then x0_hat = w sigma^2 / (1 + sigma^2) y at every step, whatever the noise, so the
    reconstruction is exactly that multiple of y at the last level, tile by tile or whole."""

    config = {"resolution": 16}

    def forward(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        return torch.zeros_like(x)


def test_tiles_are_stitched_back_in_place() -> None:
    cfg = DdimSettings(sigma_start=1.0, steps=3, guidance=2.0, tile=True, blur_sigma=0.0)
    sigma_last = reconstruction_sigmas(cfg)[-2]
    k = 2.0 * sigma_last**2 / (1 + sigma_last**2)
    y = torch.rand(2, 3, 24, 40, generator=torch.Generator().manual_seed(4)) * 2 - 1
    detector = DDIMDetector(ZeroDenoiser(), lambda x: [x + 2], cfg, "cpu")
    _, _, x_hat = detector.score(y)
    torch.testing.assert_close(x_hat, (k * y).clamp(-1, 1))
    d_f, d_p, _ = detector.tiled_distances(y)
    torch.testing.assert_close(d_p, (y - k * y).abs().mean(dim=1))


def test_tiled_map_localizes_a_defect_far_from_the_first_tile() -> None:
    """With D = 0 the map is a function of y: a bright square in the last tile peaks there."""
    cfg = DdimSettings(sigma_start=1.0, steps=2, tile=True, blur_sigma=4.0)
    y = torch.full((1, 3, 40, 40), -0.5)
    y[:, :, 30:34, 31:35] = 0.9
    _, maps, _ = DDIMDetector(ZeroDenoiser(), lambda x: [x + 2], cfg, "cpu").score(y)
    row, col = np.unravel_index(np.argmax(maps[0]), maps[0].shape)
    assert 30 <= row < 34 and 31 <= col < 35
