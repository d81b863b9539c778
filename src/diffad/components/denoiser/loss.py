"""The EDM training loss (Karras et al. 2022, eq. (2), (8) and Table 1).

Notation (paper -> code):
    y            images        clean training images (N, C, H, W) in [-1, 1]
    sigma        sigma         per-image noise level, ln sigma ~ N(P_mean, P_std^2)
    n            noise         n ~ N(0, sigma^2 I)
    lambda(s)    weight        (sigma^2 + sigma_d^2) / (sigma sigma_d)^2
    D(y + n; s)  D_yn          denoiser output

    loss = E_{sigma, n} [ lambda(sigma) || D(y + n; sigma) - y ||^2 ]

The squared error is averaged over pixels (not summed, as in EDM's code) so that an untrained
network (F = 0, D = c_skip x) starts at a loss of about 1 for data with standard deviation sigma_d,
whatever the image size; the gradient direction is the same.
"""

from __future__ import annotations

import torch

from diffad.components.denoiser.precond import EDMPrecond


def sample_sigmas(n: int, p_mean: float, p_std: float, generator: torch.Generator) -> torch.Tensor:
    """(n,) noise levels with ln sigma ~ N(p_mean, p_std^2), on the generator's device."""
    return (torch.randn(n, generator=generator, device=generator.device) * p_std + p_mean).exp()


def loss_weight(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    """lambda(sigma) = (sigma^2 + sigma_d^2) / (sigma sigma_d)^2, EDM Table 1."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def edm_loss(
    denoiser: EDMPrecond,
    images: torch.Tensor,
    sigma: torch.Tensor,
    noise: torch.Tensor,
) -> torch.Tensor:
    """Per-image weighted denoising loss (N,), float32.

    Args:
        images: clean y (N, C, H, W).
        sigma: (N,) noise levels.
        noise: standard normal (N, C, H, W); the network sees y + sigma * noise.
    """
    s = sigma.to(torch.float32).view(-1, 1, 1, 1)
    D_yn = denoiser(images + s * noise, s.flatten()).to(torch.float32)
    weight = loss_weight(s, denoiser.sigma_data)
    return (weight * (D_yn - images.to(torch.float32)) ** 2).mean(dim=(1, 2, 3))  # eq. (2) with eq. (8)
