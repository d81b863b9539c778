"""DDAD domain adaptation: the adapted copy sees reconstructions more like their targets."""

from __future__ import annotations

import torch
from torch import nn

from diffad.config import DDIMReconstructionConfig
from diffad.diffusion.domain_adaptation import adapt_features, cosine_loss
from diffad.diffusion.precond import EDMPrecond
from diffad.diffusion.reconstruct import reconstruct


class TinyFeatures(nn.Module):
    """Two "blocks" of a small random CNN, frozen like the real backbone."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.block0 = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.block1 = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU())
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h0 = self.block0(x)
        return [h0, self.block1(h0)]


class BlurNet(nn.Module):
    """F that makes D a blurring, colour-shifting denoiser: its reconstructions differ from the input."""

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(x, 3, stride=1, padding=1) * 2 + 0.3


def test_adaptation_brings_reconstruction_features_to_the_target() -> None:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(8, 3, 16, 16, generator=g) * 2 - 1
    denoiser = EDMPrecond(BlurNet())
    cfg = DDIMReconstructionConfig(
        sigma_start=1.0, steps=3, domain_adaptation_steps=30, adapt_lr=3e-3, batch_size=8
    )
    features = TinyFeatures()
    before = {k: v.clone() for k, v in features.state_dict().items()}
    adapted = adapt_features(features, denoiser, images, cfg, seed=0, log=lambda _: None)

    target, start = images[:4], images[4:]
    x0 = reconstruct(denoiser, target, cfg, torch.Generator().manual_seed(5), guidance=3.0, start=start)
    with torch.no_grad():
        gap_before = float(cosine_loss(features(x0), features(target)))
        gap_after = float(cosine_loss(adapted(x0), adapted(target)))
    assert gap_after < 0.7 * gap_before
    assert all(torch.equal(v, features.state_dict()[k]) for k, v in before.items())  # original untouched
    assert not any(p.requires_grad for p in adapted.parameters())


def test_start_image_is_what_gets_noised() -> None:
    """With guidance 0 and no denoising change (F = 0 at sigma_start ~ 0), x_hat follows ``start``."""
    denoiser = EDMPrecond(BlurNet())
    cfg = DDIMReconstructionConfig(sigma_start=0.001, steps=1, guidance=0.0)
    y, start = torch.zeros(1, 3, 8, 8), torch.full((1, 3, 8, 8), 0.5)
    out = reconstruct(denoiser, y, cfg, torch.Generator().manual_seed(0), start=start)
    assert float((out - start).abs().max()) < 0.01
