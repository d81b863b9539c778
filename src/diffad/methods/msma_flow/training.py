"""Maximum-likelihood training of PatchFlow on the good images' patch norms, and per-patch scoring.

Recipe (MSMA reference, with the best-so-far checkpoint instead of better-than-previous):
    1. split the *images* 90/10 into train/validation (seeded permutation);
    2. u = (log r - loc) / scale with loc/scale of the training images' log-norms (stored in the model);
    3. each step: ``batch_size`` training images, ``positions_per_step`` random positions shared by the
       batch; loss = mean over the (position, image) pairs of -log p(u | c);
       an epoch is one pass over the training images;
    4. after each epoch: validation NLL on a fixed set of positions of the validation images;
       keep the best epoch's weights; stop after ``patience`` epochs without a new best.
NLLs in logs and history are in nats per feature dimension (divided by L), comparable across L.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from diffad.core.errors import ConfigError, DataError, require_finite
from diffad.core.runtime import seed_everything
from diffad.methods.msma_flow.model import PatchFlow
from diffad.methods.msma_flow.position import positional_encoding_2d
from diffad.methods.msma_flow.settings import MsmaFlowSettings

VAL_POSITIONS = 1024  # validation positions (fixed for the run), at most the whole grid
PAIRS_PER_CHUNK = 32768  # (position, image) pairs per forward pass when scoring: bounds memory


@dataclass
class TrainFlowResult:
    """Outcome of :func:`train_patchflow`; ``model`` holds the best epoch's weights (eval mode)."""

    model: PatchFlow
    history: list[dict[str, float]] = field(default_factory=list)  # epoch, train_nll, val_nll (nats/dim)
    best_epoch: int = 0
    best_nll: float = math.inf  # the selection criterion at best_epoch (val, or train without a val split)
    seconds: float = 0.0
    stopped_early: bool = False


class BestCheckpoint:
    """Keeps a copy of the weights with the lowest NLL seen so far and counts epochs since then."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = math.inf
        self.best_epoch = 0
        self.since_best = 0
        self.state: dict[str, torch.Tensor] | None = None

    def update(self, epoch: int, nll: float, model: nn.Module) -> bool:
        """Record epoch ``epoch``'s NLL; copy the weights if it is a new best (NaN never is)."""
        if nll < self.best:
            self.best, self.best_epoch, self.since_best = nll, epoch, 0
            self.state = copy.deepcopy(model.state_dict())
            return True
        self.since_best += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.since_best >= self.patience

    def restore(self, model: nn.Module) -> None:
        if self.state is None:
            raise DataError("msma_flow: the NLL was never finite; check data/score_norms/patch_norms.npy")
        model.load_state_dict(self.state)


def split_images(
    n: int, val_fraction: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded (train, val) image indices; at least one validation image when ``val_fraction`` > 0."""
    n_val = 0 if val_fraction <= 0 else min(n - 1, max(1, round(n * val_fraction)))
    perm = torch.randperm(n, generator=generator)
    return perm[n_val:], perm[:n_val]


def _as_vectors(patch_norms: np.ndarray) -> torch.Tensor:
    """(N, L, h, w) array -> (N, h*w, L) float32 tensor, checked."""
    if patch_norms.ndim != 4:
        raise DataError(f"patch norms: expected (N, L, h, w), got shape {tuple(patch_norms.shape)}")
    x = torch.from_numpy(np.asarray(patch_norms, dtype=np.float32))
    if not torch.isfinite(x).all():
        raise DataError("patch norms: contain NaN or infinite values")
    n, L, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(n, h * w, L)


def _nll_pairs(
    model: PatchFlow, u: torch.Tensor, codes: torch.Tensor, positions: torch.Tensor
) -> torch.Tensor:
    """-log p(u | c) for images ``u`` (B, HW, L) at ``positions`` (n,): (n, B), one pass."""
    x = u[:, positions].transpose(0, 1)  # (n, B, L): the code broadcasts over images
    return -model.log_prob(x, codes[positions][:, None, :])


@torch.no_grad()
def mean_nll(model: PatchFlow, u: torch.Tensor, codes: torch.Tensor, positions: torch.Tensor) -> float:
    """Mean -log p per feature dimension (nats/dim) over images ``u`` and ``positions``."""
    chunk = max(1, PAIRS_PER_CHUNK // max(1, u.shape[0]))
    total = sum(_nll_pairs(model, u, codes, p).sum().item() for p in positions.split(chunk))
    return total / (u.shape[0] * positions.numel() * u.shape[-1])


def train_patchflow(
    patch_norms: np.ndarray,
    cfg: MsmaFlowSettings,
    *,
    seed: int,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] = print,
) -> TrainFlowResult:
    """Fit a :class:`PatchFlow` to the good images' patch norms (N, L, h, w), all > 0.

    Returns the best epoch's model (eval mode, on ``device``), the per-epoch history and timing.
    """
    start = time.perf_counter()
    device = torch.device(device)
    gen = seed_everything(seed)  # also seeds the weight initialisation
    vectors = _as_vectors(patch_norms)
    n, hw, L = vectors.shape
    h, w = patch_norms.shape[2:]
    if n < 2 and cfg.val_fraction > 0:
        raise DataError(f"msma_flow: {n} training image(s); a validation split needs at least 2")
    train_idx, val_idx = split_images(n, cfg.val_fraction, gen)

    model = PatchFlow(L, cfg)
    model.fit_normalization(vectors[train_idx])
    model.grid.copy_(torch.tensor([h, w]))
    model.to(device)
    u = model.normalize(vectors.to(device))  # (N, HW, L)
    codes = positional_encoding_2d(h, w, cfg.pos_dim).to(device)  # (HW, P)
    val_positions = torch.randperm(hw, generator=gen)[:VAL_POSITIONS].to(device)
    u_train, u_val = u[train_idx.to(device)], u[val_idx.to(device)]

    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    keeper = BestCheckpoint(cfg.patience)
    result = TrainFlowResult(model=model)
    n_pos = min(cfg.positions_per_step, hw)
    log(f"msma_flow: {len(train_idx)} train / {len(val_idx)} val images, {h}x{w} positions, L={L}, {device}")
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        losses = []
        for step, batch in enumerate(torch.randperm(len(train_idx), generator=gen).split(cfg.batch_size), 1):
            positions = torch.randperm(hw, generator=gen)[:n_pos].to(device)
            loss = _nll_pairs(model, u_train[batch.to(device)], codes, positions).mean()
            require_finite(loss, "msma_flow: loss", f"at epoch {epoch}, step {step}; lower msma_flow.lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item() / L)
        model.eval()
        train_nll = float(np.mean(losses))
        val_nll = mean_nll(model, u_val, codes, val_positions) if len(val_idx) else math.nan
        improved = keeper.update(epoch, val_nll if len(val_idx) else train_nll, model)
        result.history.append({"epoch": epoch, "train_nll": train_nll, "val_nll": val_nll})
        log(
            f"msma_flow: epoch {epoch}/{cfg.epochs} train {train_nll:.4f} val {val_nll:.4f} nats/dim"
            + (" (best)" if improved else "")
        )
        if keeper.should_stop and epoch < cfg.epochs:
            result.stopped_early = True
            log(f"msma_flow: no new best for {cfg.patience} epochs, stopping")
            break
    keeper.restore(model)
    result.best_epoch, result.best_nll = keeper.best_epoch, keeper.best
    result.seconds = time.perf_counter() - start
    model.eval()
    return result


@torch.no_grad()
def patch_nll(
    model: PatchFlow, patch_norms: np.ndarray, *, device: str | torch.device = "cpu", batch_size: int = 64
) -> np.ndarray:
    """Per-position -log p(u | c) in nats: (N, L, h, w) norms -> (N, h, w) float32 NLL map.

    The map is at patch resolution; the caller upsamples it to the image. ``model`` is moved to
    ``device`` and put in eval mode.
    """
    vectors = _as_vectors(patch_norms)
    n, hw, L = vectors.shape
    h, w = patch_norms.shape[2:]
    if L != model.num_features:
        raise DataError(f"patch norms: {L} noise levels, but the flow was trained on {model.num_features}")
    trained = tuple(int(v) for v in model.grid.tolist())
    if trained != (0, 0) and trained != (h, w):
        raise DataError(
            f"patch norms: grid {h}x{w} differs from the flow's training grid {trained[0]}x{trained[1]}"
        )
    device = torch.device(device)
    model = model.to(device).eval()
    codes = positional_encoding_2d(h, w, model.cfg.pos_dim).to(device)
    out = np.empty((n, hw), dtype=np.float32)
    for start in range(0, n, batch_size):
        u = model.normalize(vectors[start : start + batch_size].to(device))
        chunk = max(1, PAIRS_PER_CHUNK // u.shape[0])
        for positions in torch.arange(hw, device=device).split(chunk):
            nll = _nll_pairs(model, u, codes, positions)  # (n_pos, B)
            out[start : start + u.shape[0], positions.cpu().numpy()] = nll.T.cpu().numpy()
    return out.reshape(n, h, w)


def image_scores_from_nll(nll: np.ndarray, how: str = "max", k: int = 10) -> np.ndarray:
    """Image anomaly scores (N,) from NLL maps (N, h, w): the maximum, or the mean of the top ``k``."""
    flat = np.asarray(nll, dtype=np.float64).reshape(len(nll), -1)
    if how == "max":
        return flat.max(axis=1)
    if how == "topk_mean":
        k = max(1, min(int(k), flat.shape[1]))
        return np.sort(flat, axis=1)[:, -k:].mean(axis=1)
    raise ConfigError(f"flow image score: {how!r} is not max or topk_mean")
