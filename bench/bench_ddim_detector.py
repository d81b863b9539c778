"""Image and pixel AUROC and speed of the DDIM reconstruction detector on a prepared dataset.

Minimal evaluation (the `evaluate` stage is the complete one): scores the labelled test images
(good and anomalous) with :class:`diffad.methods.ddim.reconstruction.DDIMDetector` and the EfficientNet-Lite0
features, for every combination of the swept parameters.

    python bench/bench_ddim_detector.py --data data/prepared \\
        --denoiser models/denoiser/denoiser.safetensors --set sigma_start=0.3,0.5 --set guidance=1,3 \\
        --out bench/results/ddim_detector.json
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import time
import typing
from pathlib import Path

import numpy as np
import torch
import yaml

from diffad.components.backbone import FeatureExtractor
from diffad.components.denoiser.checkpoint import load_denoiser
from diffad.core.runtime import configure_threads, select_device
from diffad.core.typed_yaml import convert
from diffad.data.dataset import load_prepared
from diffad.methods.ddim.reconstruction import DDIMDetector
from diffad.methods.ddim.settings import DdimSettings
from diffad.metrics.roc import auroc


def sweep(settings: list[str]) -> list[DdimSettings]:
    """``key=v1,v2`` strings -> every combination, as configs (values parsed as YAML, typed)."""
    hints = typing.get_type_hints(DdimSettings)
    keys, choices = [], []
    for item in settings:
        key, _, values = item.partition("=")
        keys.append(key)
        choices.append([yaml.safe_load(v) for v in values.split(",")])
    configs = []
    for combo in itertools.product(*choices):
        kwargs = {k: convert(v, hints[k], f"ddim.{k}") for k, v in zip(keys, combo, strict=True)}
        configs.append(DdimSettings(**kwargs))
    return configs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--denoiser", type=Path, default=Path("models/denoiser/denoiser.safetensors"))
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=V1,V2", help="swept ddim parameter"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    args = parser.parse_args()

    configure_threads(args.threads)
    device = select_device(args.device)
    dataset = load_prepared(args.data)
    rows = dataset.rows(split="test")
    rows = rows[rows["label"] != "unknown"]
    images = dataset.images(rows)
    labels = (rows["label"] == "anomaly").to_numpy().astype(int)
    masks = dataset.masks(rows)
    denoiser = load_denoiser(args.denoiser, device)

    runs = []
    for cfg in sweep(args.set):
        features = FeatureExtractor(blocks=cfg.feature_blocks).to(device)
        detector = DDIMDetector(denoiser, features, cfg, device)
        start = time.perf_counter()
        scores, maps, _ = detector.score(images)
        seconds = time.perf_counter() - start
        run = {
            "ddim": dataclasses.asdict(cfg),
            "image_auroc": round(auroc(labels, scores), 4),
            "pixel_auroc": round(auroc(masks.ravel(), maps.ravel()), 4) if masks is not None else None,
            "ms_per_image": round(1000 * seconds / len(images), 1),
            "per_defect_image_auroc": {
                defect: round(auroc(labels[sel], scores[sel]), 4)
                for defect in sorted(set(rows["defect"]) - {"good"})
                if (sel := np.isin(rows["defect"].to_numpy(), ["good", defect])).any()
            },
        }
        runs.append(run)
        shown = {k: v for k, v in run["ddim"].items() if any(s.startswith(f"{k}=") for s in args.set)}
        print(json.dumps({**shown, **{k: v for k, v in run.items() if k != "ddim"}}), flush=True)
    result = {
        "bench": "ddim_detector",
        "data": str(args.data),
        "denoiser": str(args.denoiser),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "runs": runs,
    }
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
