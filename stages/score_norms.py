"""score_norms: multiscale score norms of every prepared image (MSMA features).

For each image (manifest order) and noise level sigma_i, s_i = D(x; sigma_i) - c_skip(sigma_i) x;
caches the per-image L2 norms (N, L) and per-patch norm maps (N, L, H/s, W/s) as .npy, and which
rows are the good training images (the norm-fitted methods are fitted on those).
"""

from __future__ import annotations

# First: from this import on, the stage dies with its parent (stages/__init__.py).
from stages import add_denoiser_option, load_stage_params, stage_device, stage_parser

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from diffad.components.denoiser.checkpoint import load_denoiser
from diffad.components.score_norms import (
    compute_score_norms,
    save_score_cache,
    save_training_positions,
    score_sigmas,
)
from diffad.core.command import run_command
from diffad.data.dataset import load_prepared

log = logging.getLogger("diffad.score_norms")


def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--data", type=Path, default=Path("data/prepared"), help="prepared dataset folder")
    add_denoiser_option(parser)
    parser.add_argument("--out", type=Path, default=Path("data/score_norms"), help="score norm cache folder")
    args = parser.parse_args(argv)
    params = load_stage_params(args)
    device = stage_device(params)

    dataset = load_prepared(args.data)
    denoiser = load_denoiser(args.denoiser, device)
    sigmas = score_sigmas(params.score_norms)
    images = dataset.images(dataset.manifest)
    start = time.perf_counter()
    norms = compute_score_norms(
        denoiser,
        images,
        sigmas,
        params.score_norms,
        device=device,
        generator=torch.Generator().manual_seed(params.seed),
    )
    seconds = time.perf_counter() - start
    save_score_cache(args.out, norms, sigmas, config=params.score_norms)
    save_training_positions(args.out, dataset.positions(dataset.training_rows()))
    log.info(
        "%d images x %d sigmas in %.1f s (%.1f images/s)",
        len(images),
        len(sigmas),
        seconds,
        len(images) / seconds,
    )


if __name__ == "__main__":
    run_command(main)
