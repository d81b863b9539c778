"""fit_baselines: PatchCore and PaDiM on the EfficientNet-Lite0 backbone, fitted on good images.

They run beside the diffusion methods so every report shows whether diffusion beats the classic
methods on the same data and backbone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from diffad.baselines.padim import PaDiM
from diffad.baselines.patchcore import PatchCore
from diffad.cli import run_command
from diffad.data.dataset import load_prepared
from diffad.features.backbone import FeatureExtractor
from stages._stage import load_stage_params, stage_device, stage_parser

log = logging.getLogger("diffad.fit_baselines")


def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--data", type=Path, default=Path("data/prepared"), help="prepared dataset folder")
    parser.add_argument("--out", type=Path, default=Path("models/baselines"), help="output folder")
    args = parser.parse_args(argv)
    params = load_stage_params(args)
    device = stage_device(params)
    cfg = params.fit_baselines

    dataset = load_prepared(args.data)
    images = dataset.images(dataset.rows(split="train", label="good"))
    extractor = FeatureExtractor(blocks=cfg.feature_blocks, input_size=cfg.input_size).to(device)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, method in (("patchcore", PatchCore), ("padim", PaDiM)):
        start = time.perf_counter()
        model = method(extractor, cfg, device).fit(images, seed=params.seed)
        model.save(args.out / f"{name}.safetensors")
        log.info("%s fitted on %d images in %.1f s", name, len(images), time.perf_counter() - start)


if __name__ == "__main__":
    run_command(main)
