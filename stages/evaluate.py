"""evaluate: every method on the same test images -> metrics, curves, heatmaps, model bundle.

Methods: ``evaluate.methods`` (folders of src/diffad/methods/). Model files are found by their name:
the pixel denoiser at ``--denoiser``, every method's own files in ``--models/<method>/``.
"""

from __future__ import annotations

# First: from this import on, the stage dies with its parent (stages/__init__.py).
from stages import add_denoiser_option, load_stage_params, stage_device, stage_parser

import logging
from collections.abc import Sequence
from pathlib import Path

from diffad.components.methods import model_files
from diffad.components.score_norms import load_score_cache
from diffad.core.command import run_command
from diffad.core.errors import ArtifactError
from diffad.data.dataset import load_prepared
from diffad.evaluation.evaluate import run
from diffad.inference.models import Models

log = logging.getLogger("diffad.evaluate")


def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--data", type=Path, default=Path("data/prepared"), help="prepared dataset folder")
    parser.add_argument(
        "--norms", type=Path, default=Path("data/score_norms"), help="score norm cache folder"
    )
    add_denoiser_option(parser)
    parser.add_argument(
        "--models", type=Path, default=Path("models/methods"), help="folder of the fit stages' model folders"
    )
    parser.add_argument("--reports", type=Path, default=Path("reports"), help="report folder")
    parser.add_argument("--bundle", type=Path, default=Path("models/bundle"), help="model bundle folder")
    parser.add_argument(
        "--headline", type=Path, default=Path("metrics"), help="folder of the per-method headline metrics"
    )
    args = parser.parse_args(argv)
    params = load_stage_params(args)

    dataset = load_prepared(args.data)
    image_norms, patch_norms, _ = load_score_cache(args.norms)
    fitted: dict[str, Path] = {}
    for path in sorted(p for p in args.models.glob("*/*") if p.is_file()):
        if path.name in fitted:  # files are found by their bundle name: two would collide
            raise ArtifactError(f"{path}: {fitted[path.name]} has the same name; a bundle holds one of each")
        fitted[path.name] = path
    paths = {"denoiser.safetensors": args.denoiser, **fitted}
    paths = {name: paths.get(name, args.models / name) for name in model_files(params.evaluate.methods)}
    models = Models(params=params, paths=paths, device=stage_device(params))
    result = run(
        dataset,
        models,
        (image_norms, patch_norms),
        params,
        reports_dir=args.reports,
        bundle_dir=args.bundle,
        headline_dir=args.headline,
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
