"""train_denoiser: train the EDM denoiser D(x; sigma) on the good training images.

Writes the EMA weights (safetensors), the loss curve (DVC plot), a grid of samples from the
deterministic sampler and the parameters used. A resumable checkpoint is kept beside them, so an
interrupted run continues where it stopped.
"""

from __future__ import annotations

# First: from this import on, the stage dies with its parent (stages/__init__.py).
from stages import load_stage_params, stage_device, stage_parser

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from diffad.components.denoiser.training import SAMPLES_FILE, train_denoiser
from diffad.core.command import run_command
from diffad.core.files import atomic_write
from diffad.core.maps import resize_images
from diffad.data.dataset import load_prepared
from diffad.viz.grid import save_grid

log = logging.getLogger("diffad.train_denoiser")


def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--data", type=Path, default=Path("data/prepared"), help="prepared dataset folder")
    parser.add_argument("--out", type=Path, default=Path("models/denoiser"), help="output folder")
    args = parser.parse_args(argv)
    params = load_stage_params(args)

    dataset = load_prepared(args.data)
    images = resize_images(dataset.images(dataset.training_rows()), params.train_denoiser.resolution)
    log.info("training on %d good images of %s", len(images), tuple(images.shape[1:]))
    result = train_denoiser(
        images,
        params.train_denoiser,
        seed=params.seed,
        device=stage_device(params),
        out_dir=args.out,
        log=log.info,
    )
    if result.samples is not None:
        save_grid(result.samples, args.out / SAMPLES_FILE)
    text = json.dumps(params.to_dict(), indent=2)
    atomic_write(args.out / "params.json", lambda tmp: tmp.write_text(text))
    log.info("%s", result)


if __name__ == "__main__":
    run_command(main)
