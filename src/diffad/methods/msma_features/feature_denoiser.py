"""An EDM denoiser of backbone feature cells: D(z; sigma) for standardised patch features z.

The pixel denoiser (unet.py) must learn images from a few hundred 32 px crops on a CPU; the
pretrained backbone already separates what matters (PatchCore and PaDiM live on it). Here the
diffusion model is trained on the backbone's patch embedding instead, standardised per channel so
that sigma_data = 1, with the same EDM preconditioning (precond.py) and loss (loss.py) as the pixel
model. Each feature cell is denoised on its own (1 x 1 convolutions): the model is a density of
patch features, like PatchCore's memory bank, not of their arrangement.

Training draws ``batch_cells`` random cells of the training grids per step, ln sigma ~
N(p_mean, p_std^2) (one level per ``CELLS_PER_LEVEL`` cells), Adam with a short warm-up and a cosine
decay of the learning rate; deterministic for a seed on one thread.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from diffad.components.denoiser.loss import edm_loss, sample_sigmas
from diffad.components.denoiser.precond import EDMPrecond
from diffad.components.denoiser.unet import FourierEmbedding
from diffad.methods.msma_features.settings import MsmaFeaturesSettings

SIGMA_DATA = 1.0  # the features are standardised per channel
NOISE_FEATURES = 32  # Fourier features of c_noise
NOISE_FREQUENCY_STD = 4.0
GROUPS = 8  # GroupNorm groups of the hidden layers
WARMUP_SHARE = 0.05
CELLS_PER_LEVEL = 32  # training cells that share one noise level (one noise embedding per group)


class CellNet(nn.Module):
    """The raw network F(c_in z, c_noise) of :class:`EDMPrecond`: (N, C, h, w) -> (N, C, h, w).

    The noise level enters once, as a scale and shift of the first hidden layer; the residual
    blocks after it are plain. c_noise = ln(sigma) / 4 spans about one unit over the trained
    levels, so its Fourier frequencies are drawn with standard deviation ``NOISE_FREQUENCY_STD``
    (at 1 the embedding is nearly flat across sigma).
    """

    def __init__(self, channels: int, hidden: int, blocks: int) -> None:
        super().__init__()
        self.channels = channels  # stored with the weights, checked on load
        self.noise = FourierEmbedding(NOISE_FEATURES)
        self.embed = nn.Sequential(
            nn.Linear(NOISE_FEATURES, hidden), nn.SiLU(), nn.Linear(hidden, 2 * hidden)
        )
        self.inp = nn.Conv2d(channels, hidden, 1)
        self.blocks = nn.ModuleList(nn.Conv2d(hidden, hidden, 1) for _ in range(blocks))
        self.out = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        # the noise embedding once per distinct level (training draws a level per group of cells)
        levels, index = torch.unique(c_noise, return_inverse=True)
        emb = self.embed(self.noise(levels * NOISE_FREQUENCY_STD))[index]
        scale, shift = emb[:, :, None, None].chunk(2, dim=1)
        h = torch.addcmul(shift, F.silu(self.inp(x)), scale + 1)
        for block in self.blocks:
            h = h + F.silu(block(cell_group_norm(h)))
        return self.out(h)


def cell_group_norm(h: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """GroupNorm over the channels of each cell alone: (N, C, h, w), ``GROUPS`` groups.

    nn.GroupNorm would also pool over the grid, so a whole feature map (scoring) would be
    normalised differently from the single cells the network is trained on.
    """
    n, c, height, width = h.shape
    groups = h.view(n, GROUPS, c // GROUPS, height, width)
    mean = groups.mean(dim=2, keepdim=True)
    var = groups.var(dim=2, keepdim=True, unbiased=False)
    return ((groups - mean) / (var + eps).sqrt()).view(n, c, height, width)


def build_feature_denoiser(channels: int, hidden: int, blocks: int) -> EDMPrecond:
    return EDMPrecond(CellNet(channels, hidden, blocks), sigma_data=SIGMA_DATA)


def warmup_cosine(step: int, steps: int) -> float:
    """Learning-rate factor: linear warm-up over the first 5 % of ``steps``, then cosine to 0."""
    warmup = max(1, round(WARMUP_SHARE * steps))
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def train_feature_denoiser(
    cells: torch.Tensor, cfg: MsmaFeaturesSettings, seed: int, device: torch.device
) -> tuple[EDMPrecond, list[float]]:
    """Fit D on standardised feature ``cells`` (M, C); returns it (eval mode) and the loss per step."""
    torch.manual_seed(seed)  # the initial weights
    denoiser = build_feature_denoiser(cells.shape[1], cfg.hidden, cfg.blocks).to(device)
    optimizer = torch.optim.Adam(denoiser.parameters(), lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(warmup_cosine, steps=cfg.steps))
    generator = torch.Generator(device=device).manual_seed(seed)
    cells = cells.to(device)
    losses = []
    denoiser.train()
    for _ in range(cfg.steps):
        pick = torch.randint(cells.shape[0], (cfg.batch_cells,), generator=generator, device=device)
        y = cells[pick][:, :, None, None]  # (B, C, 1, 1): one cell is one "image"
        levels = sample_sigmas(-(-y.shape[0] // CELLS_PER_LEVEL), cfg.p_mean, cfg.p_std, generator)
        sigma = levels.repeat_interleave(CELLS_PER_LEVEL)[: y.shape[0]]
        noise = torch.randn(y.shape, generator=generator, device=device)
        loss = edm_loss(denoiser, y, sigma, noise).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    return denoiser.eval(), losses
