"""Deterministic sampling of the probability-flow ODE of an EDM denoiser (Karras et al. 2022).

Variance-exploding form: x_sigma = x + sigma n. With x0_hat = D(x_sigma; sigma) the ODE is
dx/dsigma = (x - x0_hat) / sigma, and one Euler step from sigma to sigma' is exactly the
deterministic DDIM update

    x_sigma' = x0_hat + (sigma' / sigma) (x_sigma - x0_hat).

``heun=True`` adds EDM's second-order correction (Algorithm 1) on every step except the last
one to sigma = 0.
"""

from __future__ import annotations

import contextlib

import torch

from diffad.components.denoiser.precond import EDMPrecond
from diffad.components.denoiser.schedule import karras_sigmas
from diffad.core.runtime import autocast_dtype


def module_device(module: torch.nn.Module) -> torch.device:
    """Device of a module's first parameter (CPU for a module without parameters)."""
    return next(module.parameters(), torch.empty(0)).device


def denoise(denoiser: EDMPrecond, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """D(x; sigma) in float32, with bf16 autocast on CUDA (full float32 on CPU)."""
    dtype = autocast_dtype(x.device)
    ctx = torch.autocast(x.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    with ctx:
        return denoiser(x, sigma).to(torch.float32)


def sampling_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float) -> list[float]:
    """``steps`` Karras levels from sigma_max down to sigma_min, then 0 (steps + 1 values)."""
    return [*karras_sigmas(steps, sigma_min, sigma_max, rho).tolist(), 0.0]


@torch.no_grad()
def sample(
    denoiser: EDMPrecond,
    shape: tuple[int, ...],
    *,
    steps: int,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    rho: float = 7.0,
    generator: torch.Generator | None = None,
    heun: bool = False,
) -> torch.Tensor:
    """Draw ``shape`` = (N, C, H, W) images with ``steps`` deterministic Euler (DDIM) steps.

    The only randomness is the initial x ~ N(0, sigma_max^2 I), drawn from ``generator`` (on the
    generator's device, then moved to the denoiser's). Returns float32 images, roughly in [-1, 1].
    """
    device = module_device(denoiser)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    sigmas = sampling_sigmas(steps, sigma_min, sigma_max, rho)
    x = torch.randn(shape, generator=generator, device=gen_device).to(device) * sigmas[0]
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:], strict=True):
        x0 = denoise(denoiser, x, sigma)
        x_next = x0 + (sigma_next / sigma) * (x - x0)  # DDIM = Euler in sigma
        if heun and sigma_next > 0:  # Heun: average the slopes at both ends
            x0_next = denoise(denoiser, x_next, sigma_next)
            d = (x - x0) / sigma
            d_next = (x_next - x0_next) / sigma_next
            x_next = x + (sigma_next - sigma) * 0.5 * (d + d_next)
        x = x_next
    return x
