"""fit: fit one method on the good training images, or on their score norms; ``fit@<method>`` in dvc.yaml.

Which input a method needs is its detector's ``fits_on`` (:mod:`diffad.components.detector`):
``images`` reads the prepared dataset (``--inputs data/prepared``), ``score_norms`` the cached norms
(``--inputs data/score_norms``). The method writes its own files into ``--out``; ``--history``
gets its learning curve (one row per epoch or step, `dvc plots`; only a header for a method fitted
in closed form). The curve is a file of its own, not one inside the model folder: DVC cannot read a
plot inside a cached folder that is not in the cache yet (a fresh clone running one stage of `dvc
exp run`), and a cached file, unlike an uncached one, is restored from the run-cache on any host.
"""

from __future__ import annotations

# First: from this import on, the stage dies with its parent (stages/__init__.py).
from stages import load_stage_params, stage_device, stage_parser

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from diffad.components.detector import ImageDetector, NormsDetector
from diffad.components.methods import detector_class, method_names
from diffad.components.model_context import ModelContext
from diffad.components.score_norms import load_score_cache, load_training_positions
from diffad.core.command import run_command
from diffad.core.errors import ConfigError
from diffad.core.files import atomic_write
from diffad.data.dataset import load_prepared

log = logging.getLogger("diffad.fit")


def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--method", required=True, help=f"the method to fit: {', '.join(method_names())}")
    parser.add_argument(
        "--inputs",
        type=Path,
        required=True,
        help="data/prepared (image-fitted) or data/score_norms (norm-fitted)",
    )
    parser.add_argument("--out", type=Path, required=True, help="the method's model folder")
    parser.add_argument("--history", type=Path, required=True, help="the learning curve's CSV file")
    args = parser.parse_args(argv)
    params = load_stage_params(args)

    detector = detector_class(args.method)
    models = ModelContext(params=params, paths={}, device=stage_device(params))
    start = time.perf_counter()
    if issubclass(detector, ImageDetector):
        dataset = load_prepared(args.inputs)
        inputs = dataset.images(dataset.training_rows())
        fitted = detector.fit(inputs, models, seed=params.seed)
    elif issubclass(detector, NormsDetector):
        image_norms, patch_norms, _ = load_score_cache(args.inputs)
        train = load_training_positions(args.inputs)
        inputs = image_norms[train]
        fitted = detector.fit(image_norms[train], patch_norms[train], models, seed=params.seed)
    else:
        raise ConfigError(
            f"--method {args.method}: fitted on {detector.fits_on}, nothing to fit in a fit stage"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    fitted.save(args.out)
    write_history(args.history, fitted.training_history())
    log.info("%s fitted on %d images in %.1f s", args.method, len(inputs), time.perf_counter() - start)


def write_history(path: Path, history: list[dict]) -> None:
    """No timings here: the curve is a stage output, and must be the same on every rerun."""
    table = pd.DataFrame(history) if history else pd.DataFrame(columns=["step"])
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))


if __name__ == "__main__":
    run_command(main)
