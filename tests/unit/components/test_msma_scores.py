"""MSMA score norms on hand-made denoisers whose scores are known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from diffad.components.denoiser.precond import EDMPrecond
from diffad.components.score_norms import compute_score_norms, score_sigmas
from diffad.components.settings import ScoreNormSettings

SIGMA_DATA = 0.5


class LinearNet(nn.Module):
    """F(y; c_noise) = W * y + c_noise: a fixed 3x3 conv (no bias) plus the noise conditioning."""

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(
                torch.randn(self.conv.weight.shape, generator=torch.Generator().manual_seed(1))
            )

    def forward(self, y: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        return self.conv(y) + c_noise.view(-1, 1, 1, 1)


class OracleNet(nn.Module):
    """A perfect denoiser for one known clean batch x0: D(y; sigma) = x0 for every y and sigma."""

    def __init__(self, x0: torch.Tensor) -> None:
        super().__init__()
        self.x0 = x0

    def forward(self, y_in: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        sigma = torch.exp(4 * c_noise.double()).view(-1, 1, 1, 1)
        s2 = sigma**2 + SIGMA_DATA**2
        y = y_in.double() * s2.sqrt()  # undo c_in
        c_skip, c_out = SIGMA_DATA**2 / s2, sigma * SIGMA_DATA / s2.sqrt()
        return ((self.x0.double() - c_skip * y) / c_out).float()


def hand_score(net: LinearNet, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """s = c_out F(c_in x; c_noise), with the EDM coefficients written out by hand."""
    c_in = 1 / math.sqrt(sigma**2 + SIGMA_DATA**2)
    c_out = sigma * SIGMA_DATA / math.sqrt(sigma**2 + SIGMA_DATA**2)
    c_noise = math.log(sigma) / 4
    with torch.no_grad():
        return c_out * (net.conv(c_in * x) + c_noise)


def brute_patch_norm(s: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """sqrt of the sum of s^2 over channels and the window starting (window-1)//2 before stride*u."""
    _, h, w = s.shape
    before = (window - 1) // 2
    out = torch.zeros(h // stride, w // stride, dtype=torch.float64)
    for u in range(h // stride):
        for v in range(w // stride):
            r0, c0 = stride * u - before, stride * v - before
            rows = slice(max(r0, 0), min(r0 + window, h))
            cols = slice(max(c0, 0), min(c0 + window, w))
            out[u, v] = s[:, rows, cols].double().square().sum().sqrt()
    return out


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(5, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_score_sigmas_run_karras_from_max_to_min() -> None:
    cfg = ScoreNormSettings(num_sigmas=5, sigma_min=0.1, sigma_max=64.0, rho=7.0)
    sigmas = score_sigmas(cfg)
    assert sigmas[0].item() == pytest.approx(64.0) and sigmas[-1].item() == pytest.approx(0.1)
    mid = (64.0 ** (1 / 7) + 0.5 * (0.1 ** (1 / 7) - 64.0 ** (1 / 7))) ** 7
    assert sigmas[2].item() == pytest.approx(mid)


def test_norms_match_hand_computed_scores(images: torch.Tensor) -> None:
    torch.manual_seed(0)
    net = LinearNet()
    cfg = ScoreNormSettings(num_sigmas=3, sigma_min=0.2, sigma_max=10.0, batch_size=2)
    sigmas = score_sigmas(cfg)
    out = compute_score_norms(EDMPrecond(net, SIGMA_DATA), images, sigmas, cfg, device="cpu")
    assert out.image_norms.shape == (5, 3)
    assert out.patch_norms.shape == (5, 3, 4, 4)
    for i, sigma in enumerate(sigmas.tolist()):
        s = hand_score(net, images, sigma)
        expected = torch.linalg.norm(s.flatten(1), dim=1)
        np.testing.assert_allclose(out.image_norms[:, i], expected.numpy(), rtol=1e-5)
        for j in (0, 3):
            np.testing.assert_allclose(out.patch_norms[j, i], brute_patch_norm(s[j], 3, 2).numpy(), rtol=1e-5)


@pytest.mark.parametrize(("size", "window", "stride"), [(12, 4, 3), (8, 1, 1), (8, 5, 2)])
def test_patch_geometry_matches_brute_force(size: int, window: int, stride: int) -> None:
    net = LinearNet()
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(3)) * 2 - 1
    cfg = ScoreNormSettings(
        num_sigmas=2, sigma_min=0.5, sigma_max=2.0, patch_window=window, patch_stride=stride
    )
    sigmas = score_sigmas(cfg)
    out = compute_score_norms(EDMPrecond(net, SIGMA_DATA), x, sigmas, cfg, device="cpu")
    assert out.patch_norms.shape == (2, 2, size // stride, size // stride)
    s = hand_score(net, x, float(sigmas[1]))
    np.testing.assert_allclose(
        out.patch_norms[1, 1], brute_patch_norm(s[1], window, stride).numpy(), rtol=1e-5
    )


@pytest.mark.parametrize("mode", ["clean", "noised"])
def test_batching_does_not_change_the_result(images: torch.Tensor, mode: str) -> None:
    D = EDMPrecond(LinearNet(), SIGMA_DATA)
    results = []
    for batch_size, source in ((1, images), (4, images), (64, [images[:2], images[2:]])):
        cfg = ScoreNormSettings(num_sigmas=3, input=mode, noise_draws=2, batch_size=batch_size)
        gen = torch.Generator().manual_seed(7)
        results.append(compute_score_norms(D, source, score_sigmas(cfg), cfg, device="cpu", generator=gen))
    for other in results[1:]:
        np.testing.assert_allclose(other.image_norms, results[0].image_norms, rtol=1e-6)
        np.testing.assert_allclose(other.patch_norms, results[0].patch_norms, rtol=1e-6)


def test_noised_input_subtracts_the_clean_image(images: torch.Tensor) -> None:
    """A perfect denoiser gives D(x + sigma n) = x, so one noisy draw must give the clean score."""
    D = EDMPrecond(OracleNet(images), SIGMA_DATA)
    clean = ScoreNormSettings(num_sigmas=4, sigma_min=0.1, sigma_max=20.0, batch_size=8)
    noised = ScoreNormSettings(num_sigmas=4, sigma_min=0.1, sigma_max=20.0, batch_size=8, input="noised")
    sigmas = score_sigmas(clean)
    a = compute_score_norms(D, images, sigmas, clean, device="cpu")
    b = compute_score_norms(
        D, images, sigmas, noised, device="cpu", generator=torch.Generator().manual_seed(0)
    )
    # (1 - c_skip) x for the oracle: check the value, not only the agreement
    c_skip = SIGMA_DATA**2 / (sigmas**2 + SIGMA_DATA**2)
    expected = (1 - c_skip).numpy()[None, :] * torch.linalg.norm(images.flatten(1), dim=1).numpy()[:, None]
    np.testing.assert_allclose(a.image_norms, expected, rtol=1e-4)
    np.testing.assert_allclose(b.image_norms, expected, rtol=1e-4)
    np.testing.assert_allclose(b.patch_norms, a.patch_norms, rtol=1e-4, atol=1e-6)


def test_noised_draws_average_towards_the_clean_score(images: torch.Tensor) -> None:
    """For a linear denoiser E_n D(x + sigma n) = D(x), so many draws approach the clean score."""
    D = EDMPrecond(LinearNet(), SIGMA_DATA)
    kw = dict(num_sigmas=2, sigma_min=0.3, sigma_max=1.0, batch_size=8)
    sigmas = score_sigmas(ScoreNormSettings(**kw))
    clean = compute_score_norms(D, images, sigmas, ScoreNormSettings(**kw), device="cpu")
    one = compute_score_norms(D, images, sigmas, ScoreNormSettings(**kw, input="noised"), device="cpu")
    many = compute_score_norms(
        D, images, sigmas, ScoreNormSettings(**kw, input="noised", noise_draws=400), device="cpu"
    )
    err_one = np.abs(one.image_norms / clean.image_norms - 1).max()
    err_many = np.abs(many.image_norms / clean.image_norms - 1).max()
    assert err_many < 0.03 and err_many < err_one / 4
