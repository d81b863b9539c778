"""Multiscale score norms (MSMA; Mahmood et al. 2020, arXiv 2010.13132) from an EDM denoiser.

For every image and each of L noise levels sigma_i (Karras spacing, sigma_max -> sigma_min) the
"score" is the part of the denoiser output that does not come from the skip connection:

    s_i(x) = D(x; sigma_i) - c_skip(sigma_i) x  ( = c_out(sigma_i) F(c_in(sigma_i) x) )

evaluated on the clean image, as the reference app on EDM2 does (``input = "clean"``). It is not
multiplied by sigma: the reference does not, and every consumer standardizes each level's norm
(StandardScaler before the GMM), which removes any per-level constant factor.

``input = "noised"``: the denoiser sees x_sigma = x + sigma n (the inputs it was trained on) and

    s_i(x) = mean_k D(x + sigma_i n_k; sigma_i) - c_skip(sigma_i) x,      k = 1..noise_draws.

The clean image, not x_sigma, is subtracted. This keeps the two properties that matter: with n = 0 it
is exactly the clean score above, and the injected noise cancels: a good denoiser gives
D(x_sigma) ~ x, so s ~ (D(x_sigma) - x) + (1 - c_skip) x = denoising residual + a fixed multiple of x.
Subtracting c_skip x_sigma instead (= c_out F(c_in x_sigma)) leaves the noise -c_skip sigma n that F
predicts in s, whose norm ~ c_skip sigma sqrt(CHW) swamps the image-dependent part at small sigma.
The draws are averaged as vectors (a Monte-Carlo estimate of E_n D), then normed.

Norms (accumulated in float32):
    image_norms[j, i]       = ||s_i(x_j)||_2 over (C, H, W)
    patch_norms[j, i, u, v] = sqrt(sum over channels and the w x w window at (stride u, stride v)
                              of s_i^2), zero padding (w - 1) // 2 before the window (centred for odd w)
                              and as little as needed after it, so the map is exactly H/stride x W/stride
                              (for w = 3, stride 2 this is the reference's conv with padding 1).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from diffad.components.denoiser.precond import EDMPrecond
from diffad.components.denoiser.schedule import karras_sigmas
from diffad.components.settings import ScoreNormSettings
from diffad.core.errors import ArtifactError, DataError
from diffad.core.files import atomic_write
from diffad.core.maps import resize_images
from diffad.core.runtime import autocast_dtype
from diffad.core.typed_yaml import to_plain

IMAGE_NORMS_FILE = "image_norms.npy"
PATCH_NORMS_FILE = "patch_norms.npy"
SIGMAS_FILE = "sigmas.json"
TRAINING_FILE = "training_positions.json"  # which rows are the good training images


@dataclass(frozen=True)
class ScoreNorms:
    """Per-image and per-patch score norms; row order = input order.

    image_norms: (N, L); patch_norms: (N, L, H/stride, W/stride); both float32 unless asked otherwise.
    """

    image_norms: np.ndarray
    patch_norms: np.ndarray


def score_sigmas(cfg: ScoreNormSettings) -> torch.Tensor:
    """The L noise levels, float64 (L,), Karras rho spacing from sigma_max down to sigma_min."""
    return karras_sigmas(cfg.num_sigmas, cfg.sigma_min, cfg.sigma_max, cfg.rho)


def patch_norm_maps(sq: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """Local L2 norms from squared values ``sq`` (B, C, H, W) -> (B, H/stride, W/stride).

    Sums sq over channels and a ``window`` x ``window`` window every ``stride`` pixels (zero padding
    as in the module docstring), then takes the square root.
    """
    _, _, h, w = sq.shape
    if h % stride or w % stride:
        raise DataError(f"score_norms.patch_stride: {stride} does not divide the image size {h}x{w}")
    total = sq.sum(dim=1, keepdim=True)
    before = (window - 1) // 2
    pads = []
    for size in (w, h):  # F.pad order: last dim first
        needed = (size // stride - 1) * stride + window - size  # total padding for size/stride outputs
        pads += [before, max(needed - before, 0)]
    total = F.pad(total, pads)
    pooled = F.avg_pool2d(total, window, stride=stride, divisor_override=1)  # a sum pool
    return pooled[:, 0, : h // stride, : w // stride].clamp_min(0).sqrt()


def _batches(images: torch.Tensor | Iterable[torch.Tensor], batch_size: int) -> Iterator[torch.Tensor]:
    """Yield (B, C, H, W) chunks of at most ``batch_size`` images from a tensor or an iterable of them."""
    chunks = [images] if isinstance(images, torch.Tensor) else images
    for chunk in chunks:
        if chunk.ndim != 4:
            raise DataError(
                f"compute_score_norms: expected (N, C, H, W) images, got shape {tuple(chunk.shape)}"
            )
        yield from chunk.split(batch_size)


def compute_score_norms(
    denoiser: EDMPrecond,
    images: torch.Tensor | Iterable[torch.Tensor],
    sigmas: torch.Tensor,
    cfg: ScoreNormSettings,
    *,
    device: torch.device | str,
    generator: torch.Generator | None = None,
    out_dtype: type[np.floating] = np.float32,
) -> ScoreNorms:
    """Score norms of ``images`` ((N, C, H, W) in [-1, 1], or an iterable of such batches).

    ``sigmas``: (L,) noise levels (see :func:`score_sigmas`). Batches of ``cfg.batch_size`` under
    ``torch.inference_mode``; bf16 autocast on CUDA (unless ``cfg.bf16`` is false), float32 on CPU,
    each batch first downscaled to the denoiser's resolution (as it was trained: train_denoiser),
    norms summed in float32. The denoiser is moved to
    ``device`` and put in eval mode. ``generator`` (CPU) seeds the noise of ``input = "noised"``;
    each image gets its own stream, so results do not depend on the batch size or the device.
    """
    device = torch.device(device)
    denoiser = denoiser.to(device).eval()
    sigma_list = [float(s) for s in torch.as_tensor(sigmas).flatten()]
    noised = cfg.input == "noised"
    side = int((getattr(denoiser, "config", None) or {}).get("resolution", 0))
    base_seed = int(torch.randint(0, 2**62, (1,), generator=generator)) if noised else 0
    amp = autocast_dtype(device) if cfg.bf16 else None
    image_rows: list[np.ndarray] = []
    patch_rows: list[np.ndarray] = []
    start = 0
    with torch.inference_mode():
        for batch in _batches(images, cfg.batch_size):
            x = batch.to(device=device, dtype=torch.float32)
            if side:
                x = resize_images(x, side)
            streams = [torch.Generator().manual_seed(base_seed + start + j) for j in range(len(x))]
            img = torch.empty(len(x), len(sigma_list), device=device)
            patches = []
            for i, sigma in enumerate(sigma_list):
                s = _score(denoiser, x, sigma, cfg.noise_draws if noised else 0, streams, amp)
                sq = s.float().square()
                img[:, i] = sq.sum(dim=(1, 2, 3)).sqrt()
                patches.append(patch_norm_maps(sq, cfg.patch_window, cfg.patch_stride))
            image_rows.append(img.cpu().numpy().astype(out_dtype))
            patch_rows.append(torch.stack(patches, dim=1).cpu().numpy().astype(out_dtype))
            start += len(x)
    if not image_rows:
        raise DataError("compute_score_norms: no images to score")
    return ScoreNorms(np.concatenate(image_rows), np.concatenate(patch_rows))


def _score(
    denoiser: EDMPrecond,
    x: torch.Tensor,
    sigma: float,
    draws: int,
    streams: list[torch.Generator],
    amp: torch.dtype | None,
) -> torch.Tensor:
    """s = D(x; sigma) - c_skip x (draws = 0), or mean over draws of D(x + sigma n; sigma) - c_skip x."""
    ctx = torch.autocast(x.device.type, dtype=amp) if amp is not None else contextlib.nullcontext()
    c_skip = float(denoiser.c_skip(sigma))
    with ctx:
        if draws == 0:
            denoised = denoiser(x, sigma).float()
        else:
            denoised = torch.zeros_like(x)
            for _ in range(draws):
                n = torch.stack([torch.randn(x.shape[1:], generator=g) for g in streams]).to(x.device)
                denoised += denoiser(x + sigma * n, sigma).float()
            denoised /= draws
    return denoised - c_skip * x


IMAGE_NORMS_DTYPE, PATCH_NORMS_DTYPE = np.float32, np.float16  # as the cache stores them (below)


def as_cached(norms: ScoreNorms) -> ScoreNorms:
    """``norms`` rounded as :func:`save_score_cache` stores them, as float32.

    Every model after ``score_norms`` was fitted and calibrated on the cached (float16) patch norms;
    norms computed afresh for new images (``diffad predict``, the dashboard's upload) go through the
    same rounding, so an image scores the same there as in ``evaluate``.
    """
    return ScoreNorms(
        np.asarray(norms.image_norms).astype(IMAGE_NORMS_DTYPE).astype(np.float32),
        np.asarray(norms.patch_norms).astype(PATCH_NORMS_DTYPE).astype(np.float32),
    )


def save_score_cache(
    out_dir: str | Path,
    norms: ScoreNorms,
    sigmas: torch.Tensor | np.ndarray,
    *,
    config: ScoreNormSettings | None = None,
) -> None:
    """Write ``image_norms.npy`` (N, L) float32, ``patch_norms.npy`` (N, L, h, w) float16 and
    ``sigmas.json`` ({"sigmas": [...], "config": {...} or null}) into ``out_dir``.

    Image norms stay float32 (they are small): at the largest sigmas the norm hardly varies between
    images (relative spread ~1e-4 for sigma = 64) and float16's rounding (relative 2^-11 ~ 5e-4) would
    exceed that spread, which the GMM's standardization then amplifies. Patch norms vary more between
    images (relative spread >= 1e-3) and dominate the size, so they are float16.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sigma_values = [float(s) for s in np.asarray(sigmas, dtype=np.float64).ravel()]
    _check_shapes(norms.image_norms.shape, norms.patch_norms.shape, len(sigma_values), out_dir)
    files = (
        (IMAGE_NORMS_FILE, norms.image_norms, IMAGE_NORMS_DTYPE),
        (PATCH_NORMS_FILE, norms.patch_norms, PATCH_NORMS_DTYPE),
    )
    for name, arr, dtype in files:
        arr = np.asarray(arr, dtype=np.float32)
        if not np.isfinite(arr).all() or arr.max(initial=0.0) > np.finfo(dtype).max:
            raise DataError(
                f"{out_dir / name}: score norms are not finite or exceed the {np.dtype(dtype)} range"
            )
        stored = arr.astype(dtype)
        atomic_write(out_dir / name, lambda tmp, a=stored: _save_npy(tmp, a))
    meta = {"sigmas": sigma_values, "config": None}
    if config is not None:
        meta["config"] = to_plain(config)
    text = json.dumps(meta, indent=2) + "\n"
    atomic_write(out_dir / SIGMAS_FILE, lambda tmp: tmp.write_text(text))


def save_training_positions(out_dir: str | Path, positions: Sequence[int]) -> None:
    """Write the manifest positions of the good training images (what the norm-fitted methods are
    fitted on) beside the norms, so fitting needs the norms only."""
    text = json.dumps({"positions": [int(i) for i in positions]}) + "\n"
    atomic_write(Path(out_dir) / TRAINING_FILE, lambda tmp: tmp.write_text(text))


def load_training_positions(out_dir: str | Path) -> np.ndarray:
    """The positions :func:`save_training_positions` wrote; :class:`ArtifactError` naming the file."""
    path = Path(out_dir) / TRAINING_FILE
    positions = _json_array(path, "positions", np.int64, "list of training positions")
    if positions.ndim != 1 or positions.size == 0 or positions.min() < 0:
        raise ArtifactError(f"{path}: 'positions' must be a non-empty list of non-negative integers")
    return positions


def _json_array(path: Path, key: str, dtype: type, what: str) -> np.ndarray:
    """``path``'s JSON list under ``key`` as an array; :class:`ArtifactError` naming the file."""
    try:
        return np.asarray(json.loads(path.read_text())[key], dtype=dtype)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: score cache file is missing") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{path}: not a valid {what} ({exc})") from None


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append ".npy" to a path
        np.save(f, array, allow_pickle=False)


def load_score_cache(out_dir: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a score cache: (image_norms (N, L), patch_norms (N, L, h, w), sigmas float64 (L,)).

    Raises :class:`ArtifactError` naming the file when one is missing, unreadable or inconsistent.
    """
    out_dir = Path(out_dir)
    image_norms = _load_npy(out_dir / IMAGE_NORMS_FILE)
    patch_norms = _load_npy(out_dir / PATCH_NORMS_FILE)
    path = out_dir / SIGMAS_FILE
    sigmas = _json_array(path, "sigmas", np.float64, "sigmas file")
    if sigmas.ndim != 1 or not np.all(sigmas > 0):
        raise ArtifactError(f"{path}: 'sigmas' must be a list of positive numbers")
    if image_norms.ndim != 2:
        raise ArtifactError(f"{out_dir / IMAGE_NORMS_FILE}: expected (N, L), got shape {image_norms.shape}")
    _check_shapes(image_norms.shape, patch_norms.shape, len(sigmas), out_dir)
    return image_norms, patch_norms, sigmas


def _load_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: score cache file is missing") from None
    except (ValueError, OSError, EOFError) as exc:
        raise ArtifactError(f"{path}: not a readable .npy array ({exc})") from None
    if not np.issubdtype(arr.dtype, np.floating):
        raise ArtifactError(f"{path}: expected floating-point norms, got dtype {arr.dtype}")
    return arr


def _check_shapes(image_shape: tuple, patch_shape: tuple, num_sigmas: int, out_dir: Path) -> None:
    """Image norms (N, L), patch norms (N, L, h, w) and L sigmas must agree; the error names the file."""
    if len(image_shape) != 2 or image_shape[1] != num_sigmas:
        raise ArtifactError(
            f"{out_dir / IMAGE_NORMS_FILE}: shape {image_shape} does not match {num_sigmas} sigmas"
        )
    if len(patch_shape) != 4 or tuple(patch_shape[:2]) != tuple(image_shape):
        raise ArtifactError(
            f"{out_dir / PATCH_NORMS_FILE}: shape {patch_shape} does not match image norms {image_shape}"
        )
