"""Guided DDIM reconstruction of a test image (DDAD, Mousakhan et al. 2023, arXiv 2305.15956).

The test image y is noised to sigma_start and denoised back to sigma = 0 with deterministic DDIM
steps, each pulled toward y, so that normal content is kept and anomalous content is replaced by
what the denoiser considers normal. DDAD writes it for a variance-preserving DDPM; here it is
rewritten for the variance-exploding EDM denoiser D(x; sigma) (x_sigma = x0 + sigma n) through
x_sigma = x_t / sqrt(alpha_bar_t), sigma^2 = (1 - alpha_bar_t) / alpha_bar_t.

Notation (DDAD / DDIM -> this module):

    y                     y         target: the test image (N, C, H, W) in [-1, 1]
    alpha_bar_t           sigma     noise level; alpha_bar = 1 / (1 + sigma^2)
    x_t                   x         current sample, VE scaling: x = x_t / sqrt(alpha_bar)
    eps_theta(x_t)        eps       predicted noise (x - D(x; sigma)) / sigma
    y_t                   y_sigma   target noised with the predicted noise: y + sigma eps
    eps_hat               eps_hat   guided noise prediction
    w                     guidance  DDAD's w (``cfg.guidance``)
    eta, sigma_t          eta, s    DDIM stochasticity and the std of the fresh noise z
    t -> t - 1            sigma -> sigma_next   one step down the schedule

Schedule: ``steps`` Karras levels (rho = 7) from sigma_start down to min(0.002, sigma_start),
then 0: ``steps`` denoiser evaluations. Start: x = y + sigma_start n (DDAD: x_t' = sqrt(abar) y +
sqrt(1 - abar) eps). Each step sigma -> sigma_next:

    1. x0      = D(x; sigma),  eps = (x - x0) / sigma
    2. y_sigma = y + sigma eps                              DDAD: y_t = sqrt(abar) y + sqrt(1-abar) eps
    3. eps_hat = eps - w sigma / (1 + sigma^2) (y_sigma - x)      DDAD: eps - w sqrt(1-abar) (y_t - x_t)
    4. x0_hat  = x - sigma eps_hat  ( = x0 + w sigma^2 / (1 + sigma^2) (y - x0) )
    5. s       = eta sigma_next sqrt(sigma^2 - sigma_next^2) / sigma     DDIM: sigma_t / sqrt(abar_next)
       x       = x0_hat + sqrt(sigma_next^2 - s^2) eps_hat + s z,  z ~ N(0, I)

Step 3 follows from y_t - x_t = sqrt(abar) (y_sigma - x) and sqrt(1 - abar) sqrt(abar) =
sigma / (1 + sigma^2), so ``guidance`` means what w means in DDAD. Step 4 shows what the guidance
does: the clean estimate moves toward y by the fraction w sigma^2 / (1 + sigma^2), strongly at
high noise and hardly at all near the end. With eta = 0 step 5 is the DDIM update
x = x0_hat + sigma_next eps_hat (with w = 0: the sampler's Euler step); eta = 1 is ancestral
(DDPM-like) sampling.

All images of a batch share the same noise draws n and z (shape (1, C, H, W), broadcast), so
the reconstruction of an image does not depend on which batch it is scored in.
"""

from __future__ import annotations

import math

import torch

from diffad.components.denoiser.precond import EDMPrecond
from diffad.components.denoiser.sampler import denoise, sampling_sigmas
from diffad.methods.ddim.settings import DdimSettings

SIGMA_MIN = 0.002  # EDM's lowest sampling level; the last step goes from here to 0
RHO = 7.0  # Karras spacing exponent


def reconstruction_sigmas(cfg: DdimSettings) -> list[float]:
    """The ``cfg.steps + 1`` levels sigma_start, ..., 0 of the reconstruction."""
    return sampling_sigmas(cfg.steps, min(SIGMA_MIN, cfg.sigma_start), cfg.sigma_start, RHO)


@torch.no_grad()
def reconstruct(
    denoiser: EDMPrecond,
    y: torch.Tensor,
    cfg: DdimSettings,
    generator: torch.Generator | None = None,
    *,
    guidance: float | None = None,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """Guided DDIM reconstruction x_hat (N, C, H, W) float32 of ``y`` (N, C, H, W) in [-1, 1].

    ``generator`` draws the start noise and, with ``cfg.eta > 0``, the per-step noise (on the
    generator's device; CPU when None). ``guidance`` overrides ``cfg.guidance``; ``start`` is the
    image that is noised at the start (default ``y``); domain adaptation starts from one good image
    and guides toward another, as DDAD does. Runs on ``y``'s device, bf16 autocast on CUDA.
    """
    w = cfg.guidance if guidance is None else guidance
    y = y.to(torch.float32)
    gen_device = generator.device if generator is not None else torch.device("cpu")

    def shared_noise() -> torch.Tensor:
        return torch.randn((1, *y.shape[1:]), generator=generator, device=gen_device).to(y.device)

    sigmas = reconstruction_sigmas(cfg)
    x = (y if start is None else start.to(y)) + sigmas[0] * shared_noise()
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:], strict=True):
        x0 = denoise(denoiser, x, sigma)  # 1.
        eps = (x - x0) / sigma
        y_sigma = y + sigma * eps  # 2.
        eps_hat = eps - w * sigma / (1 + sigma**2) * (y_sigma - x)  # 3.
        x0_hat = x - sigma * eps_hat  # 4.
        s = cfg.eta * sigma_next * math.sqrt(max(sigma**2 - sigma_next**2, 0.0)) / sigma  # 5.
        x = x0_hat + math.sqrt(max(sigma_next**2 - s**2, 0.0)) * eps_hat
        if s > 0:
            x = x + s * shared_noise()
    return x
