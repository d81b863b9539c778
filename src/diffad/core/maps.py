"""Anomaly-map utilities shared by every method: smoothing and resizing, and the one way an image
batch reaches a method's own input resolution."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_blur(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``maps`` (N, H, W) with std ``sigma`` pixels (reflect padding).

    The kernel spans +-4 sigma (as scipy/anomalib do), clipped to the map size.
    """
    if sigma <= 0:
        return maps
    radius = max(1, int(math.ceil(4 * sigma)))
    radius = min(radius, maps.shape[-1] - 1, maps.shape[-2] - 1)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=maps.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(maps.dtype)
    x = maps.unsqueeze(1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return x.squeeze(1)


def resize_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``maps`` (N, h, w) to ``size`` = (H, W)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)


def resize_images(images: torch.Tensor, side: int) -> torch.Tensor:
    """``images`` (N, C, H, W) at ``side`` x ``side``: antialiased bilinear (area-like when shrinking).

    The one resampling from the working resolution to a method's input resolution, so training
    (`train_denoiser`) and scoring (`score_norms`, `evaluate`, `diffad predict`) see the same pixels.
    """
    if tuple(images.shape[-2:]) == (side, side):
        return images
    shrink = side < min(images.shape[-2:])
    return F.interpolate(images, size=(side, side), mode="bilinear", align_corners=False, antialias=shrink)
