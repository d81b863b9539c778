"""Domain adaptation of the feature extractor to the denoiser's reconstructions (DDAD, §3.3).

A pretrained backbone sees an image and its reconstruction as different even when both are
normal: the reconstruction is slightly smoother, its colours slightly off. DDAD fine-tunes a copy
phi of the backbone so that normal reconstructions look like normal images, while a frozen copy
phi_0 keeps it from drifting (which would also hide the defects):

    x0 = reconstruct(start = image a, target y = image b, guidance w_DA)   (a, b good training images)
    L  = sum_j [ (1 - cos(phi_j(x0), phi_j(y)))                      reconstruction ~ target
               + lambda (1 - cos(phi_j(y), phi_0,j(y)))              target features stay
               + lambda (1 - cos(phi_j(x0), phi_0,j(x0))) ]          reconstruction features stay

with the cosine taken over each whole flattened feature map and averaged over the batch (DDAD's
``loss_fucntion``), AdamW at ``adapt_lr``. Unlike DDAD the BatchNorm layers keep their ImageNet
running statistics (``FeatureExtractor.train()`` is a no-op): the batches here are small.
Randomness (pairs, noise) comes from (seed, step), so the result is reproducible on CPU.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from diffad.config import DDIMReconstructionConfig
from diffad.diffusion.detector import backbone_input
from diffad.diffusion.precond import EDMPrecond
from diffad.diffusion.reconstruct import reconstruct
from diffad.diffusion.training import step_generator
from diffad.errors import DataError

STREAM = 3  # step_generator stream of the adaptation draws (training uses 0-2)


def cosine_loss(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """sum_j mean_n (1 - cos(flatten(a_j[n]), flatten(b_j[n])))."""
    return sum(
        (1 - F.cosine_similarity(x.flatten(1), y.flatten(1), dim=1)).mean() for x, y in zip(a, b, strict=True)
    )


def adapt_features(
    features: nn.Module,
    denoiser: EDMPrecond,
    images: torch.Tensor,
    cfg: DDIMReconstructionConfig,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    log: Callable[[str], None] = print,
) -> nn.Module:
    """A copy of ``features`` adapted for ``cfg.domain_adaptation_steps`` steps on good ``images``.

    ``images``: (N, 3, H, W) in [-1, 1], N >= 2. Each step draws ``max(1, cfg.batch_size // 2)``
    (start, target) pairs. ``features`` itself is left unchanged; the copy is returned frozen
    (eval, no grad) on ``device``.
    """
    if images.shape[0] < 2:
        raise DataError(f"domain adaptation needs at least 2 good training images, got {images.shape[0]}")
    device = torch.device(device)
    frozen = features.to(device).eval()
    adapted = copy.deepcopy(frozen).requires_grad_(True)
    optimizer = torch.optim.AdamW([p for p in adapted.parameters() if p.requires_grad], lr=cfg.adapt_lr)
    pairs = min(max(1, cfg.batch_size // 2), images.shape[0] // 2)
    size = cfg.feature_size
    for step in range(cfg.domain_adaptation_steps):
        gen = step_generator(seed, STREAM, step)
        order = torch.randperm(images.shape[0], generator=gen)
        target = images[order[:pairs]].to(device, torch.float32)
        start = images[order[pairs : 2 * pairs]].to(device, torch.float32)
        x0 = reconstruct(denoiser, target, cfg, gen, guidance=cfg.adapt_guidance, start=start).clamp(-1, 1)
        x0, target = backbone_input(x0, size), backbone_input(target, size)
        with torch.no_grad():
            frozen_target, frozen_x0 = frozen(target), frozen(x0)
        adapted_x0, adapted_target = adapted(x0), adapted(target)
        loss = (
            cosine_loss(adapted_x0, adapted_target)
            + cfg.adapt_lambda * cosine_loss(adapted_target, frozen_target)
            + cfg.adapt_lambda * cosine_loss(adapted_x0, frozen_x0)
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if (step + 1) % 10 == 0 or step + 1 == cfg.domain_adaptation_steps:
            log(f"domain adaptation step {step + 1}/{cfg.domain_adaptation_steps}  loss {loss.item():.4f}")
    return adapted.requires_grad_(False).eval()
