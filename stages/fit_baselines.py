"""fit_baselines: every detector fitted on good images (PatchCore, PaDiM, ...), one file each.

They run beside the diffusion methods so every report shows whether diffusion beats the classic
methods on the same data and backbone. Which detectors: every registered one whose ``fits_on`` is
``images`` (:mod:`diffad.detectors`), so a new image-fitted method is fitted here with no edit.
"""

from __future__ import annotations

import stages  # noqa: F401 - first: the stage dies with its parent from here on (stages/__init__.py)
from stages._stage import load_stage_params, stage_device, stage_parser

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from diffad.cli import run_command
from diffad.data.dataset import load_prepared
from diffad.detectors.base import ImageDetector, detector_classes
from diffad.inference.models import Models

log = logging.getLogger("diffad.fit_baselines")


def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--data", type=Path, default=Path("data/prepared"), help="prepared dataset folder")
    parser.add_argument("--out", type=Path, default=Path("models/baselines"), help="output folder")
    args = parser.parse_args(argv)
    params = load_stage_params(args)

    dataset = load_prepared(args.data)
    images = dataset.images(dataset.training_rows())
    models = Models(params=params, paths={}, device=stage_device(params))  # shares the backbone
    args.out.mkdir(parents=True, exist_ok=True)
    for detector in detector_classes():
        if not issubclass(detector, ImageDetector):
            continue
        start = time.perf_counter()
        detector.fit(images, models, seed=params.seed).save(args.out)
        log.info("%s fitted on %d images in %.1f s", detector.name, len(images), time.perf_counter() - start)


if __name__ == "__main__":
    run_command(main)
