"""EDM preconditioning (Karras et al. 2022, Table 1): D(x; sigma) from a raw network F.

Notation (paper -> code):
    sigma_d      sigma_data     standard deviation of the data (images in [-1, 1])
    c_skip       c_skip         skip weight of the input
    c_out        c_out          scale of the network output
    c_in         c_in           input scale, so that F sees unit variance
    c_noise      c_noise        noise conditioning passed to F
    F_x          F_x            raw network output F(c_in x; c_noise)
    D_x          D_x            denoised estimate D(x; sigma)
"""

from __future__ import annotations

import torch
from torch import nn


def edm_coefficients(sigma: torch.Tensor, sigma_data: float) -> tuple[torch.Tensor, ...]:
    """(c_skip, c_out, c_in, c_noise) for noise levels ``sigma`` (any shape), eq. (7) / Table 1."""
    c_skip = sigma_data**2 / (sigma**2 + sigma_data**2)
    c_out = sigma * sigma_data / (sigma**2 + sigma_data**2).sqrt()
    c_in = 1 / (sigma_data**2 + sigma**2).sqrt()
    c_noise = sigma.log() / 4
    return c_skip, c_out, c_in, c_noise


class EDMPrecond(nn.Module):
    """Wraps a raw network ``F(x, c_noise)`` into the denoiser ``D(x; sigma)``.

    ``x``: (N, C, H, W) noisy images in the VE convention x = y + sigma n;
    ``sigma``: scalar or (N,) noise levels. Returns D(x; sigma) with the shape of ``x``.
    """

    def __init__(self, net: nn.Module, sigma_data: float = 0.5) -> None:
        super().__init__()
        self.net = net
        self.sigma_data = float(sigma_data)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1, 1, 1, 1)
        sigma = sigma.expand(x.shape[0], 1, 1, 1)
        c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, self.sigma_data)
        F_x = self.net((c_in * x).to(x.dtype), c_noise.flatten())
        D_x = c_skip * x + c_out * F_x.to(torch.float32)  # eq. (7)
        return D_x.to(x.dtype)

    def c_skip(self, sigma: torch.Tensor | float) -> torch.Tensor:
        """c_skip(sigma), used by MSMA's score s = D(x; sigma) - c_skip(sigma) x."""
        sigma = torch.as_tensor(sigma, dtype=torch.float32)
        return edm_coefficients(sigma, self.sigma_data)[0]
