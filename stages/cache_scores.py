"""cache_scores: multiscale score norms of every prepared image (MSMA features).

For each image (manifest order) and noise level sigma_i, s_i = D(x; sigma_i) - c_skip(sigma_i) x;
caches the per-image L2 norms (N, L) and per-patch norm maps (N, L, H/s, W/s) as float16 .npy.
"""

from __future__ import annotations

import stages  # noqa: F401 - first: the stage dies with its parent from here on (stages/__init__.py)
from stages._stage import load_stage_params, stage_device, stage_parser

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from diffad.cli import run_command
from diffad.data.dataset import load_prepared
from diffad.diffusion.checkpoint import load_denoiser
from diffad.msma.scores import compute_score_norms, save_score_cache, score_sigmas

log = logging.getLogger("diffad.cache_scores")


def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--data", type=Path, default=Path("data/prepared"), help="prepared dataset folder")
    parser.add_argument("--denoiser", type=Path, default=Path("models/denoiser/denoiser.safetensors"))
    parser.add_argument("--out", type=Path, default=Path("data/scores"), help="score cache folder")
    args = parser.parse_args(argv)
    params = load_stage_params(args)
    device = stage_device(params)

    dataset = load_prepared(args.data)
    denoiser = load_denoiser(args.denoiser, device)
    sigmas = score_sigmas(params.cache_scores)
    images = dataset.images(dataset.manifest)
    start = time.perf_counter()
    norms = compute_score_norms(
        denoiser,
        images,
        sigmas,
        params.cache_scores,
        device=device,
        generator=torch.Generator().manual_seed(params.seed),
    )
    seconds = time.perf_counter() - start
    save_score_cache(args.out, norms, sigmas, config=params.cache_scores)
    log.info(
        "%d images x %d sigmas in %.1f s (%.1f images/s)",
        len(images),
        len(sigmas),
        seconds,
        len(images) / seconds,
    )


if __name__ == "__main__":
    run_command(main)
