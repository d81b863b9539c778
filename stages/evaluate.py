"""evaluate: every method on the same test images -> metrics, curves, heatmaps, model bundle.

Methods: ``evaluate.methods``, any registered in :mod:`diffad.detectors`. Model files are found by
their name: the denoiser, GMM and flow at the paths given, every other one (the image-fitted
detectors') in ``--baselines``.
"""

from __future__ import annotations

import stages  # noqa: F401 - first: the stage dies with its parent from here on (stages/__init__.py)
from stages._stage import load_stage_params, stage_device, stage_parser

import logging
from collections.abc import Sequence
from pathlib import Path

from diffad.cli import run_command
from diffad.data.dataset import load_prepared
from diffad.detectors.base import model_files
from diffad.evaluation.evaluate import run
from diffad.inference.models import Models
from diffad.msma.scores import load_score_cache

log = logging.getLogger("diffad.evaluate")


def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--scores", type=Path, default=Path("data/scores"))
    parser.add_argument("--denoiser", type=Path, default=Path("models/denoiser/denoiser.safetensors"))
    parser.add_argument("--gmm", type=Path, default=Path("models/gmm/gmm.json"))
    parser.add_argument("--flow", type=Path, default=Path("models/flow/flow.safetensors"))
    parser.add_argument("--baselines", type=Path, default=Path("models/baselines"))
    parser.add_argument("--reports", type=Path, default=Path("reports"), help="report folder")
    parser.add_argument("--bundle", type=Path, default=Path("models/bundle"), help="model bundle folder")
    args = parser.parse_args(argv)
    params = load_stage_params(args)

    dataset = load_prepared(args.data)
    image_norms, patch_norms, _ = load_score_cache(args.scores)
    given = {"denoiser.safetensors": args.denoiser, "gmm.json": args.gmm, "flow.safetensors": args.flow}
    paths = {name: given.get(name, args.baselines / name) for name in model_files(params.evaluate.methods)}
    models = Models(params=params, paths=paths, device=stage_device(params))
    result = run(
        dataset, models, (image_norms, patch_norms), params, reports_dir=args.reports, bundle_dir=args.bundle
    )
    for method, metrics in result.metrics.items():
        overall = metrics["overall"]
        log.info(
            "%-10s image AUROC %s  pixel AUROC %s  AUPRO %s",
            method,
            _fmt(overall["image_auroc"]),
            _fmt(overall["pixel_auroc"]),
            _fmt(overall["aupro"]),
        )


def _fmt(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    run_command(main)
