"""Settings of `train_denoiser`: the EDM pixel denoiser D(x; sigma) and its training run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from diffad.core.typed_yaml import Section, setting


@dataclass(frozen=True)
class TrainDenoiserSettings(Section):
    """The EDM pixel denoiser D(x; sigma) that msma_gmm, msma_flow, ddim (and so the ensemble and
    fused) compute with, and its training run."""

    key = "train_denoiser"
    preset: Literal["xxs", "xs", "s", "m"] = setting(
        "xs", "UNet size: xs (CPU) | s | m (GPUs); xxs: smoke tests"
    )
    resolution: int = setting(
        32,
        "the denoiser's input side (images downscaled to it); 32-64 on CPU, up to data.resolution on a GPU",
        8,
        4096,
    )
    batch_size: int = setting(32, "images per step", 1, 65536)
    steps: int = setting(400, "optimizer steps", 1, 10_000_000)
    lr: float = setting(2e-3, "AdamW learning rate (after warm-up)", 1e-8, 1.0)
    lr_warmup_steps: int = setting(50, "linear warm-up", 0, 10_000_000)
    weight_decay: float = setting(0.0, "AdamW", 0.0, 10.0)
    ema_halflife_images: int = setting(2000, "EMA half-life, in training images seen (EDM2)", 0, 10**12)
    # ln sigma ~ N(p_mean, p_std^2): beyond +-6 the noise levels leave float32's useful range
    p_mean: float = setting(-1.2, "training ln sigma ~ N(p_mean, p_std^2)", -6.0, 6.0)
    p_std: float = setting(1.2, "", 1e-3, 10.0)
    hflip: bool = setting(True, "augmentations of the good images")
    vflip: bool = setting(False, "")
    rot90: bool = setting(False, "")
    sigma_data: float = setting(0.5, "std of the data in [-1, 1] (EDM)", 1e-3, 10.0)
    dropout: float = setting(0.0, "", 0.0, 0.9)
    checkpoint_every: int = setting(100, "steps between resumable checkpoints", 1, 10_000_000)
    log_every: int = setting(50, "steps per row of loss.csv (mean loss over those steps)", 1, 10_000_000)
    sample_steps: int = setting(32, "deterministic sampler steps for the sample grid", 1, 10_000)
    sample_count: int = setting(16, "images in the sample grid", 1, 1024)
