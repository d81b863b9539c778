"""A compact UNet F(x; c_noise) and the size presets of the EDM denoiser D(x; sigma).

The network follows the DDPM++/ADM family that EDM trains, cut down to what a small anomaly
detector needs:

    c_noise --Fourier features--> MLP --> emb          (one embedding shared by every block)
    x --conv--> [ResBlock x blocks, keep skip, strided conv] per level
      --> ResBlock, Attention, ResBlock
      --> [2x nearest up, cat skip, ResBlock x blocks] per level --> GroupNorm, SiLU, conv (zero init)

ResBlock: h = conv(SiLU(GN(x))); h = SiLU(GN(h) (1 + scale(emb)) + shift(emb));
h = conv(dropout(h)); out = (skip(x) + h) / sqrt(2) (EDM's ``skip_scale``). The last conv of every
block, the attention projection and the output conv are zero-initialised, so an untrained F
returns 0 and D(x; sigma) = c_skip(sigma) x.

Size (64 px, 3 x 64 x 64 input): xs 1.9 M parameters, 1.7 GFLOP per forward pass; s 17.7 M,
10 GFLOP; m 51 M, 31 GFLOP; xxs 0.11 M, 0.3 GFLOP.

The Fourier frequencies are drawn from a fixed seed and kept as a buffer, so a rebuilt net loads
the weights it was saved with regardless of the global RNG.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from diffad.components.denoiser.precond import EDMPrecond
from diffad.core.errors import ConfigError


@dataclass(frozen=True)
class UNetSpec:
    """Architecture of :class:`UNet`; one entry of :data:`PRESETS` or a custom one (tests)."""

    widths: tuple[int, ...]  # channels per resolution level, highest resolution first
    blocks: int = 1  # residual blocks per level (encoder; the decoder has as many)
    attention: bool = True  # self-attention in the middle (lowest resolution)
    emb: int = 128  # width of the noise embedding
    fourier: int = 32  # Fourier features of c_noise (even)
    heads: int = 4  # attention heads (must divide widths[-1])


PRESETS: dict[str, UNetSpec] = {
    "xxs": UNetSpec(widths=(16, 32), blocks=1, attention=False, emb=32, fourier=16),  # tests, smoke runs
    "xs": UNetSpec(widths=(32, 64, 128), blocks=1, emb=128),  # 1.9 M parameters, 2-core CPU demo
    "s": UNetSpec(widths=(64, 128, 256, 256), blocks=2, emb=256),  # 17.7 M, one GPU
    "m": UNetSpec(widths=(128, 256, 256, 512), blocks=2, emb=512, heads=8),  # 51 M, one GPU
}


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with at most 32 groups and at least 4 channels per group (as EDM)."""
    return nn.GroupNorm(max(1, min(32, channels // 4)), channels, eps=1e-6)


def zero_init(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class FourierEmbedding(nn.Module):
    """c_noise (N,) -> (N, 2 * (num // 2)) features [cos(2 pi f c), sin(2 pi f c)], f ~ N(0, 1) fixed."""

    def __init__(self, num: int, seed: int = 0) -> None:
        super().__init__()
        freqs = torch.randn(num // 2, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("freqs", freqs)

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        angle = 2 * math.pi * c_noise.to(torch.float32).outer(self.freqs)
        return torch.cat([angle.cos(), angle.sin()], dim=1)


class ResBlock(nn.Module):
    """Residual block with noise-conditioned scale and shift (adaptive GroupNorm)."""

    def __init__(self, c_in: int, c_out: int, emb: int, dropout: float) -> None:
        super().__init__()
        self.norm0 = group_norm(c_in)
        self.conv0 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.affine = nn.Linear(emb, 2 * c_out)
        self.norm1 = group_norm(c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv1 = zero_init(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv0(F.silu(self.norm0(x)))
        scale, shift = self.affine(emb)[:, :, None, None].chunk(2, dim=1)
        h = F.silu(torch.addcmul(shift, self.norm1(h), scale + 1))
        h = self.conv1(self.dropout(h))
        return (self.skip(x) + h) * math.sqrt(0.5)


class Attention(nn.Module):
    """Multi-head self-attention over all positions, pre-GroupNorm, zero-initialised projection."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention: {heads} heads do not divide {channels} channels")
        self.heads = heads
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = zero_init(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).unbind(1)
        a = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return (x + self.proj(a.transpose(-1, -2).reshape(n, c, h, w))) * math.sqrt(0.5)


class UNet(nn.Module):
    """F(x, c_noise): (N, C, H, W), (N,) -> (N, C, H, W); H and W divisible by 2^(levels-1).

    Encoder level l: ``blocks`` ResBlocks to widths[l], keep the output as skip l, then a strided
    conv (except at the lowest level). Middle: ResBlock, attention, ResBlock. Decoder level l:
    nearest 2x upsampling (except at the lowest level), concatenate skip l, ``blocks`` ResBlocks.
    Upsampling has no conv of its own: the next ResBlock's conv smooths it at a fraction of the cost
    (at 64 px the high-resolution convs dominate the run time).
    """

    def __init__(self, spec: UNetSpec, channels: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.spec = spec
        widths, emb = spec.widths, spec.emb
        self.embed = nn.Sequential(
            FourierEmbedding(spec.fourier),
            nn.Linear(2 * (spec.fourier // 2), emb),
            nn.SiLU(),
            nn.Linear(emb, emb),
            nn.SiLU(),  # every block applies its own Linear to emb
        )
        self.conv_in = nn.Conv2d(channels, widths[0], 3, padding=1)
        self.enc, self.down = nn.ModuleList(), nn.ModuleList()
        c = widths[0]
        for level, width in enumerate(widths):
            self.enc.append(
                nn.ModuleList(
                    ResBlock(c if b == 0 else width, width, emb, dropout) for b in range(spec.blocks)
                )
            )
            c = width
            if level < len(widths) - 1:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.mid0 = ResBlock(c, c, emb, dropout)
        self.mid_attn = Attention(c, spec.heads) if spec.attention else nn.Identity()
        self.mid1 = ResBlock(c, c, emb, dropout)
        self.dec = nn.ModuleList()
        for width in reversed(widths):
            self.dec.append(
                nn.ModuleList(
                    ResBlock(c + width if b == 0 else width, width, emb, dropout) for b in range(spec.blocks)
                )
            )
            c = width
        self.norm_out = group_norm(c)
        self.conv_out = zero_init(nn.Conv2d(c, channels, 3, padding=1))

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        emb = self.embed(c_noise)
        h = self.conv_in(x)
        skips = []
        for level, blocks in enumerate(self.enc):
            for block in blocks:
                h = block(h, emb)
            skips.append(h)
            if level < len(self.down):
                h = self.down[level](h)
        h = self.mid1(self.mid_attn(self.mid0(h, emb)), emb)
        for i, blocks in enumerate(self.dec):
            if i > 0:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = torch.cat([h, skips.pop()], dim=1)
            for block in blocks:
                h = block(h, emb)
        return self.conv_out(F.silu(self.norm_out(h)))


def build_denoiser(
    preset: str | UNetSpec,
    resolution: int,
    channels: int = 3,
    sigma_data: float = 0.5,
    dropout: float = 0.0,
) -> EDMPrecond:
    """D(x; sigma) = EDMPrecond(UNet) for ``resolution`` x ``resolution`` images.

    ``preset``: a key of :data:`PRESETS` or a :class:`UNetSpec`. The description needed to rebuild
    the net (see :func:`denoiser_config`) is kept on the returned module.
    """
    spec = PRESETS.get(preset) if isinstance(preset, str) else preset
    if spec is None:
        raise ConfigError(f"train_denoiser.preset: {preset!r} is not one of {', '.join(PRESETS)}")
    factor = 2 ** (len(spec.widths) - 1)
    if resolution % factor:
        raise ConfigError(
            f"train_denoiser.resolution: {resolution} is not divisible by {factor}, which the "
            f"{len(spec.widths)}-level UNet ({preset if isinstance(preset, str) else 'custom'}) needs"
        )
    denoiser = EDMPrecond(UNet(spec, channels=channels, dropout=dropout), sigma_data=sigma_data)
    denoiser.config = {  # read by checkpoint.save_denoiser
        "preset": preset if isinstance(preset, str) else "custom",
        "resolution": int(resolution),
        "channels": int(channels),
        "sigma_data": float(sigma_data),
        "dropout": float(dropout),
        "arch": asdict(spec),
    }
    return denoiser


def denoiser_config(denoiser: EDMPrecond) -> dict:
    """The build description of a denoiser made by :func:`build_denoiser` (JSON-safe dict)."""
    config = getattr(denoiser, "config", None)
    if not isinstance(config, dict):
        raise ValueError("denoiser was not built by build_denoiser: no build description to save")
    return dict(config)


def spec_from_dict(arch: dict) -> UNetSpec:
    """Inverse of ``asdict(spec)`` (lists from JSON back to tuples)."""
    return UNetSpec(**{**arch, "widths": tuple(arch["widths"])})
