"""Noise-level schedules shared by the sampler, the DDIM detector and MSMA."""

from __future__ import annotations

import torch


def karras_sigmas(num: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. (2022) eq. (5): ``num`` levels from ``sigma_max`` down to ``sigma_min``.

    sigma_i = (sigma_max^(1/rho) + i/(num-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, float64.
    """
    if num < 1 or not 0 < sigma_min <= sigma_max:
        raise ValueError(
            f"karras_sigmas: need num >= 1 and 0 < sigma_min <= sigma_max, got "
            f"{num}, {sigma_min}, {sigma_max}"
        )
    if num == 1:
        return torch.tensor([sigma_max], dtype=torch.float64)
    i = torch.arange(num, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (hi + i / (num - 1) * (lo - hi)) ** rho
