"""Pieces of the training loop: augmentations, EMA half-life, learning-rate warm-up."""

from __future__ import annotations

import pytest
import torch

from diffad.components.denoiser.settings import TrainDenoiserSettings
from diffad.components.denoiser.training import augment, ema_beta, learning_rate


def dihedral(x: torch.Tensor) -> list[torch.Tensor]:
    """The 8 flips/rotations of one (C, H, H) image."""
    rotations = [x.rot90(k, dims=(-2, -1)) for k in range(4)]
    return rotations + [r.flip(-1) for r in rotations]


def test_augment_applies_one_symmetry_per_image() -> None:
    x = torch.arange(64 * 3 * 16, dtype=torch.float32).reshape(64, 3, 4, 4)
    cfg = TrainDenoiserSettings(hflip=True, vflip=True, rot90=True)
    out = augment(x, cfg, torch.Generator().manual_seed(0))
    kinds = []
    for xi, oi in zip(x, out, strict=True):
        matches = [k for k, t in enumerate(dihedral(xi)) if torch.equal(t, oi)]
        assert len(matches) == 1
        kinds.append(matches[0])
    assert len(set(kinds)) >= 6  # all symmetries show up in 64 draws


def test_augment_hflip_only_flips_about_half() -> None:
    x = torch.randn(200, 3, 4, 4, generator=torch.Generator().manual_seed(2))
    out = augment(x, TrainDenoiserSettings(hflip=True), torch.Generator().manual_seed(1))
    flipped = torch.tensor([torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x, strict=True)])
    kept = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x, strict=True)])
    assert bool((flipped | kept).all()) and 70 < int(flipped.sum()) < 130
    assert torch.equal(augment(x, TrainDenoiserSettings(hflip=False), torch.Generator()), x)


def test_ema_halflife_is_in_images() -> None:
    cfg = TrainDenoiserSettings(batch_size=32, ema_halflife_images=3200)
    late = 10_000  # ramp-up long over: 0.05 * images seen > half-life
    steps_per_halflife = 3200 / 32
    assert ema_beta(late, cfg) ** steps_per_halflife == pytest.approx(0.5)
    early = 9  # 320 images seen: half-life ramps up to 0.05 * 320 = 16 images, half a batch
    assert ema_beta(early, cfg) == pytest.approx(0.25)


def test_learning_rate_warms_up_linearly_then_stays() -> None:
    cfg = TrainDenoiserSettings(lr=1e-3, lr_warmup_steps=10)
    assert [learning_rate(s, cfg) for s in (0, 4, 9, 500)] == pytest.approx([1e-4, 5e-4, 1e-3, 1e-3])
