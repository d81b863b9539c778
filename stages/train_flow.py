"""train_flow: PatchFlow, a position-conditioned normalizing flow over per-patch score norms.

Maximum likelihood on random patch positions of the good training images, with a validation split,
the best checkpoint so far kept and early stopping. Writes the flow (safetensors) and the
per-epoch train/validation NLL (DVC plot).
"""

from __future__ import annotations

import stages  # noqa: F401 - first: the stage dies with its parent from here on (stages/__init__.py)
from stages._stage import load_stage_params, stage_device, stage_parser

import csv
import logging
from collections.abc import Sequence
from pathlib import Path

from diffad.cli import run_command
from diffad.data.dataset import load_prepared
from diffad.files import atomic_write
from diffad.msma.patchflow.model import save_patchflow
from diffad.msma.patchflow.training import train_patchflow
from diffad.msma.scores import load_score_cache

log = logging.getLogger("diffad.train_flow")


def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--data", type=Path, default=Path("data/prepared"), help="prepared dataset folder")
    parser.add_argument("--scores", type=Path, default=Path("data/scores"), help="score cache folder")
    parser.add_argument("--out", type=Path, default=Path("models/flow"), help="output folder")
    args = parser.parse_args(argv)
    params = load_stage_params(args)

    dataset = load_prepared(args.data)
    _, patch_norms, _ = load_score_cache(args.scores)
    train = dataset.positions(dataset.training_rows())
    result = train_patchflow(
        patch_norms[train].astype("float32"),
        params.train_flow,
        seed=params.seed,
        device=stage_device(params),
        log=log.info,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    save_patchflow(result.model, args.out / "flow.safetensors")

    def write_history(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["epoch", "train_nll", "val_nll"])
            writer.writeheader()
            writer.writerows(result.history)

    atomic_write(args.out / "history.csv", write_history)
    log.info("best epoch %d, NLL %.4f nats/dim, %.1f s", result.best_epoch, result.best_nll, result.seconds)


if __name__ == "__main__":
    run_command(main)
