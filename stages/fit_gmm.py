"""fit_gmm: Gaussian mixture over the per-image score norms of the good training images.

Saved as plain arrays in JSON (no pickle) with the training images' scores, so that a new image's
score = -log p can be shown as a percentile of the good ones.
"""

from __future__ import annotations

import stages  # noqa: F401 - first: the stage dies with its parent from here on (stages/__init__.py)
from stages._stage import load_stage_params, stage_parser

import logging
from collections.abc import Sequence
from pathlib import Path

from diffad.cli import run_command
from diffad.data.dataset import load_prepared
from diffad.msma.mixture import fit_gmm
from diffad.msma.scores import load_score_cache

log = logging.getLogger("diffad.fit_gmm")


def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--data", type=Path, default=Path("data/prepared"), help="prepared dataset folder")
    parser.add_argument("--scores", type=Path, default=Path("data/scores"), help="score cache folder")
    parser.add_argument("--out", type=Path, default=Path("models/gmm/gmm.json"), help="fitted mixture (JSON)")
    args = parser.parse_args(argv)
    params = load_stage_params(args)

    dataset = load_prepared(args.data)
    image_norms, _, _ = load_score_cache(args.scores)
    train = dataset.positions(dataset.training_rows())
    model = fit_gmm(image_norms[train], params.fit_gmm, params.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    log.info("fitted %d components on %d good images -> %s", model.n_components, len(train), args.out)


if __name__ == "__main__":
    run_command(main)
