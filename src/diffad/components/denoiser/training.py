"""Training loop of the EDM denoiser: AdamW with warm-up, EMA, augmentations, resumable checkpoints.

Reproducibility: every random draw of step k (which images, their flips and rotations, sigma,
the noise, dropout) comes from generators seeded with ``SeedSequence([seed, stream, k])``; the
image order is a fresh permutation per epoch, seeded with ``(seed, epoch)``. A step's randomness
is therefore a pure function of (seed, k), and the checkpoint needs no RNG state: a run resumed at
step k continues exactly as the uninterrupted run would (bit-identical on CPU).

EMA (EDM2-style, by images seen): after each step ema <- beta ema + (1 - beta) theta with
beta = 0.5^(batch / h), h = min(ema_halflife_images, 0.05 * images seen so far). The ramp-up
(EDM's ``ema_rampup_ratio`` = 0.05) keeps the average from being dominated by the random
initialisation in short runs. Learning rate: linear warm-up over ``lr_warmup_steps``, then constant,
so the first k steps do not depend on the total number of steps: raising ``steps`` continues a
finished run instead of starting over.

Determinism contract: on CPU the trajectory is a function of (data, cfg, seed, torch thread
count). The thread count matters because parallel reductions sum in a thread-dependent order
(1 vs 2 threads: weights differ by up to 0.25 after 400 steps), so it is part of the resume
fingerprint and of the weights' metadata, and ``runtime.threads`` is a DVC param of the stage.

Guards: a non-finite loss stops the run with an error naming the step (nothing is saved from
it); one trainer at a time per ``out_dir`` (``checkpoint/train.lock``, released by the kernel
when its owner dies); the checkpoint is checksummed (:mod:`diffad.components.denoiser.checkpoint`).

Outputs in ``out_dir``: ``denoiser.safetensors`` (EMA weights), ``loss.csv`` (``step,loss``) and
``checkpoint/state.pt`` (see :func:`train_denoiser`); the samples drawn from the finished model come
back in :class:`TrainResult` for the caller to draw (``samples.png``: nothing here draws).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from diffad.components.denoiser.checkpoint import load_state, save_denoiser, save_state
from diffad.components.denoiser.loss import edm_loss, sample_sigmas
from diffad.components.denoiser.precond import EDMPrecond
from diffad.components.denoiser.sampler import sample
from diffad.components.denoiser.settings import TrainDenoiserSettings
from diffad.components.denoiser.unet import build_denoiser
from diffad.core.errors import ArtifactError, DataError, require_finite
from diffad.core.files import atomic_write, exclusive_lock
from diffad.core.runtime import autocast_dtype
from diffad.core.typed_yaml import to_plain

WEIGHTS_FILE = "denoiser.safetensors"
LOSS_FILE = "loss.csv"
SAMPLES_FILE = "samples.png"  # the caller draws TrainResult.samples there (stages/train_denoiser.py)
STATE_FILE = Path("checkpoint") / "state.pt"
LOCK_FILE = Path("checkpoint") / "train.lock"
EMA_RAMPUP_RATIO = 0.05  # EDM: EMA half-life at most this fraction of the images seen
STATE_VERSION = 1  # bump when the meaning of the saved state changes
# Fields that do not change the trajectory of the first k steps: a checkpoint stays valid across them.
RESUMABLE_ACROSS = ("steps", "checkpoint_every", "sample_steps", "sample_count")


@dataclass(frozen=True)
class TrainResult:
    """Summary of one call of :func:`train_denoiser`."""

    finished: bool  # False when stopped early by max_steps_this_run
    steps: int  # optimizer steps done in total (including resumed ones)
    steps_this_run: int
    resumed_from: int  # step the run started at (0 = fresh)
    final_loss: float  # mean loss over the last logging interval (nan if none yet)
    images_per_s: float  # training throughput of this run
    weights: Path | None  # denoiser.safetensors, when finished
    loss_csv: Path | None
    samples: torch.Tensor | None = field(repr=False)  # (sample_count, C, H, W) in [-1, 1], to draw
    checkpoint: Path


def step_seed(seed: int, stream: int, step: int) -> int:
    """A 63-bit seed for one (seed, stream, step); streams separate unrelated draws."""
    state = np.random.SeedSequence([seed, stream, step]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def step_generator(seed: int, stream: int, step: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on ``device`` seeded with :func:`step_seed`."""
    return torch.Generator(device=device).manual_seed(step_seed(seed, stream, step))


def batch_indices(step: int, batch_size: int, n: int, seed: int) -> torch.Tensor:
    """Indices of the images in step ``step``: positions [step B, (step+1) B) of a stream of epochs.

    Each epoch is a permutation of range(n) seeded with (seed, epoch), so every image is seen once
    per epoch and the batch of any step can be computed without replaying the ones before it.
    """
    positions = torch.arange(step * batch_size, (step + 1) * batch_size)
    epochs = positions // n
    out = torch.empty(batch_size, dtype=torch.long)
    for epoch in epochs.unique().tolist():
        perm = torch.randperm(n, generator=step_generator(seed, 0, epoch))
        sel = epochs == epoch
        out[sel] = perm[positions[sel] % n]
    return out


def augment(x: torch.Tensor, cfg: TrainDenoiserSettings, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal/vertical flips and 90-degree rotations of (N, C, H, W), per image."""
    n = x.shape[0]
    draws = torch.rand(3, n, generator=generator, device=generator.device).to(x.device)
    if cfg.hflip:
        x = torch.where((draws[0] < 0.5).view(-1, 1, 1, 1), x.flip(-1), x)
    if cfg.vflip:
        x = torch.where((draws[1] < 0.5).view(-1, 1, 1, 1), x.flip(-2), x)
    if cfg.rot90:
        quarter = (draws[2] * 4).long().clamp(max=3)
        x = torch.stack([xi.rot90(int(k), dims=(-2, -1)) for xi, k in zip(x, quarter, strict=True)])
    return x


def learning_rate(step: int, cfg: TrainDenoiserSettings) -> float:
    """Linear warm-up to ``cfg.lr`` over ``lr_warmup_steps``, then constant."""
    return cfg.lr * min(1.0, (step + 1) / max(1, cfg.lr_warmup_steps))


def ema_beta(step: int, cfg: TrainDenoiserSettings) -> float:
    """EMA decay after step ``step`` (0-based): half-life in images, with EDM's ramp-up."""
    images_seen = (step + 1) * cfg.batch_size
    halflife = min(cfg.ema_halflife_images, EMA_RAMPUP_RATIO * images_seen)
    return 0.5 ** (cfg.batch_size / max(halflife, 1e-8))


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    for p_ema, p in zip(ema.parameters(), model.parameters(), strict=True):
        p_ema.lerp_(p.detach(), 1 - beta)
    for b_ema, b in zip(ema.buffers(), model.buffers(), strict=True):
        b_ema.copy_(b)


def fingerprint(images: torch.Tensor, cfg: TrainDenoiserSettings, seed: int, threads: int = 1) -> str:
    """Hash of what determines the training trajectory: data (shape and bytes), cfg, seed, threads."""
    data = hashlib.sha256(images.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()).hexdigest()
    cfg_dict = {k: v for k, v in to_plain(cfg).items() if k not in RESUMABLE_ACROSS}
    blob = json.dumps(
        {
            "v": STATE_VERSION,
            "cfg": cfg_dict,
            "shape": list(images.shape),
            "data": data,
            "seed": seed,
            "threads": threads,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def write_loss_csv(path: Path, rows: list[tuple[int, float]]) -> Path:
    text = "step,loss\n" + "".join(f"{s},{v:.6g}\n" for s, v in rows)
    return atomic_write(Path(path), lambda tmp: tmp.write_text(text))


def train_denoiser(
    images: torch.Tensor,
    cfg: TrainDenoiserSettings,
    *,
    seed: int,
    device: torch.device,
    out_dir: Path,
    log: Callable[[str], None] = print,
    max_steps_this_run: int | None = None,
    metadata: dict | None = None,
) -> TrainResult:
    """Train D(x; sigma) on ``images`` (N, C, H, W) float32 in [-1, 1] for ``cfg.steps`` steps.

    Resumes from ``out_dir/checkpoint/state.pt`` when its fingerprint (data, cfg, seed) matches,
    otherwise starts fresh. ``max_steps_this_run``: stop after this many steps (state saved, no
    final outputs), to test or split resumption. On completion writes the EMA weights (metadata:
    build description + ``train_denoiser`` cfg + seed) and ``loss.csv``, and returns
    ``sample_count`` samples drawn with ``sample_steps`` deterministic steps from noise seeded with
    ``seed`` (:attr:`TrainResult.samples`, on the CPU).
    ``metadata``: more JSON-safe entries for the weights' config, e.g. ``{"params": Params.to_dict()}``.
    """
    if images.ndim != 4 or images.shape[0] < 1 or images.shape[-1] != images.shape[-2]:
        raise DataError(f"train_denoiser: need (N, C, H, H) training images, got {tuple(images.shape)}")
    out_dir, device = Path(out_dir), torch.device(device)
    with exclusive_lock(out_dir / LOCK_FILE, "train_denoiser"):
        return _train(images, cfg, seed, device, out_dir, log, max_steps_this_run, metadata)


def _train(
    images: torch.Tensor,
    cfg: TrainDenoiserSettings,
    seed: int,
    device: torch.device,
    out_dir: Path,
    log: Callable[[str], None],
    max_steps_this_run: int | None,
    metadata: dict | None,
) -> TrainResult:
    state_path = out_dir / STATE_FILE
    n, channels, resolution = images.shape[0], images.shape[1], images.shape[-1]
    images = images.detach().to("cpu", torch.float32)

    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the initial weights (nn.init draws from the global CPU RNG)
        model = build_denoiser(cfg.preset, resolution, channels, cfg.sigma_data, cfg.dropout)
    # channels-last convs are faster on tensor cores; on CPU keep the default layout
    model.to(device, memory_format=torch.channels_last if cuda else torch.contiguous_format)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    threads = torch.get_num_threads() if not cuda else 0  # 0: does not apply (GPU computes)
    print_state = fingerprint(images, cfg, seed, threads)
    start, loss_log, pending = resume(state_path, print_state, cfg, model, ema, optimizer, log)

    dtype = autocast_dtype(device)
    autocast = (lambda: torch.autocast("cuda", dtype=dtype)) if dtype else contextlib.nullcontext
    end = cfg.steps if max_steps_this_run is None else min(cfg.steps, start + max_steps_this_run)
    model.train()
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[device] if cuda else []):  # dropout draws; caller's RNG kept
        for step in range(start, end):
            torch.manual_seed(step_seed(seed, 1, step))  # dropout
            gen = step_generator(seed, 2, step, device)
            batch = images[batch_indices(step, cfg.batch_size, n, seed)].to(device, non_blocking=True)
            batch = augment(batch, cfg, gen)
            if cuda:
                batch = batch.contiguous(memory_format=torch.channels_last)
            sigma = sample_sigmas(cfg.batch_size, cfg.p_mean, cfg.p_std, gen)
            noise = torch.randn(batch.shape, generator=gen, device=device)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, cfg)
            with autocast():
                loss = edm_loss(model, batch, sigma, noise).mean()
            hint = "nothing saved from this step; check the data, lower train_denoiser.lr"
            require_finite(loss, "train_denoiser: loss", f"at step {step + 1}; {hint}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            update_ema(ema, model, ema_beta(step, cfg))
            pending[0] += float(loss.detach())
            pending[1] += 1
            if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
                loss_log.append((step + 1, pending[0] / pending[1]))
                pending = [0.0, 0]
                rate = (step + 1 - start) * cfg.batch_size / (time.perf_counter() - t0)
                log(
                    f"step {step + 1}/{cfg.steps}  loss {loss_log[-1][1]:.4f}  "
                    f"lr {learning_rate(step, cfg):.2e}  {rate:.1f} img/s"
                )
            if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == end:
                save_state(
                    state_path, pack_state(print_state, step + 1, model, ema, optimizer, loss_log, pending)
                )
    seconds = time.perf_counter() - t0
    done = max(end, start)
    rate = (done - start) * cfg.batch_size / seconds if done > start else float("nan")
    final_loss = loss_log[-1][1] if loss_log else float("nan")
    if done < cfg.steps:
        log(f"stopped at step {done}/{cfg.steps}; state in {state_path}")
        return TrainResult(False, done, done - start, start, final_loss, rate, None, None, None, state_path)

    extra = {"train_denoiser": to_plain(cfg), "seed": seed, "threads": threads, **(metadata or {})}
    weights = save_denoiser(out_dir / WEIGHTS_FILE, ema, extra)
    loss_csv = write_loss_csv(out_dir / LOSS_FILE, loss_log)
    shape = (cfg.sample_count, channels, resolution, resolution)
    samples = sample(ema, shape, steps=cfg.sample_steps, generator=torch.Generator().manual_seed(seed))
    log(f"trained {done} steps ({done - start} in this run, {rate:.1f} img/s); final loss {final_loss:.4f}")
    return TrainResult(
        True, done, done - start, start, final_loss, rate, weights, loss_csv, samples.cpu(), state_path
    )


def pack_state(
    print_state: str,
    step: int,
    model: EDMPrecond,
    ema: EDMPrecond,
    optimizer: torch.optim.Optimizer,
    loss_log: list[tuple[int, float]],
    pending: list,
) -> dict:
    """The resumable training state as plain tensors/numbers (``torch.load(weights_only=True)``)."""
    return {
        "fingerprint": print_state,
        "step": step,
        "model": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "ema": {k: v.detach().cpu().contiguous() for k, v in ema.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "loss_log": torch.tensor(loss_log, dtype=torch.float64).reshape(-1, 2),
        "pending": torch.tensor([pending[0], pending[1]], dtype=torch.float64),
    }


def resume(
    state_path: Path,
    print_state: str,
    cfg: TrainDenoiserSettings,
    model: EDMPrecond,
    ema: EDMPrecond,
    optimizer: torch.optim.Optimizer,
    log: Callable[[str], None],
) -> tuple[int, list, list]:
    """Load a matching checkpoint into model/ema/optimizer; returns (step, loss log, pending sum/count)."""
    fresh: tuple[int, list, list] = (0, [], [0.0, 0])
    if not state_path.is_file():
        return fresh
    try:
        state = load_state(state_path)
    except ArtifactError as exc:
        log(f"ignoring unreadable checkpoint, starting fresh: {exc}")
        return fresh
    if state.get("fingerprint") != print_state:
        log(f"checkpoint {state_path} is from other data, parameters or seed; starting fresh")
        return fresh
    if int(state["step"]) > cfg.steps:
        log(f"checkpoint {state_path} is at step {int(state['step'])} > steps {cfg.steps}; starting fresh")
        return fresh
    model.load_state_dict(state["model"])
    ema.load_state_dict(state["ema"])
    optimizer.load_state_dict(state["optimizer"])
    loss_log = [(int(s), float(v)) for s, v in state["loss_log"].tolist()]
    pending = [float(state["pending"][0]), int(state["pending"][1])]
    log(f"resuming from {state_path} at step {int(state['step'])}")
    return int(state["step"]), loss_log, pending
