"""Cost of the PatchCore and PaDiM baselines: fit time, per-image inference time, peak memory.

Fits each method on ``--images`` synthetic good textures (``--resolution`` px, resized to
``--input-size`` before the EfficientNet-Lite0 backbone) and scores ``--test-images`` more, half of
them with a painted defect (the image AUROC is a sanity check, not a benchmark of the demo data).
Each method runs in its own process so that its peak RSS is its own.

    python bench/bench_baselines.py --threads 1 --out reports/bench/baselines.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from diffad.components.backbone import FeatureExtractor
from diffad.config import BaselinesConfig
from diffad.core.runtime import configure_threads, select_device
from diffad.methods.padim.model import PaDiM
from diffad.methods.patchcore.model import PatchCore

METHODS = {"patchcore": PatchCore, "padim": PaDiM}


def textures(n: int, size: int, seed: int) -> torch.Tensor:
    """Woven-looking textures: two gratings with random phase and slight orientation, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    phase = torch.rand(n, 2, generator=g) * 2 * math.pi
    tilt = (torch.rand(n, 2, generator=g) - 0.5) * 0.1
    warp = torch.sin(2 * math.pi * (x + tilt[:, :1, None] * y) / 6 + phase[:, :1, None])
    weft = torch.sin(2 * math.pi * (y + tilt[:, 1:, None] * x) / 6 + phase[:, 1:, None])
    grey = 0.3 * (warp + weft) + 0.08 * torch.randn(n, size, size, generator=g)
    tint = torch.tensor([0.9, 0.7, 0.5]).view(1, 3, 1, 1)
    return (grey[:, None] * tint).clamp(-1, 1)


def paint_defects(images: torch.Tensor, seed: int) -> torch.Tensor:
    """A dark blob of random size and place on each image."""
    g = torch.Generator().manual_seed(seed)
    out = images.clone()
    size = images.shape[-1]
    for image in out:
        side = int(torch.randint(size // 10, size // 4, (1,), generator=g))
        top, left = (int(v) for v in torch.randint(0, size - side, (2,), generator=g))
        image[:, top : top + side, left : left + side] = -0.8
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_method(name: str, args: argparse.Namespace) -> dict:
    """Fit and score one method in this process; returns the measurements."""
    from sklearn.metrics import roc_auc_score

    threads = configure_threads(args.threads)
    device = select_device(args.device)
    cfg = BaselinesConfig(
        input_size=args.input_size, coreset_ratio=args.coreset_ratio, batch_size=args.batch_size
    )
    train = textures(args.images, args.resolution, seed=0)
    good = textures(args.test_images // 2, args.resolution, seed=1)
    bad = paint_defects(textures(args.test_images - len(good), args.resolution, seed=2), seed=3)
    test = torch.cat([good, bad])
    rss_before = peak_rss_mb()
    extractor = FeatureExtractor(cfg.feature_blocks, cfg.input_size, border_pad=cfg.border_pad).to(device)

    start = time.perf_counter()
    model = METHODS[name](extractor, cfg, device).fit(train, seed=0)
    fit_s = time.perf_counter() - start
    model.score(test[: cfg.batch_size])  # warm-up
    start = time.perf_counter()
    scores, _ = model.score(test)
    score_s = time.perf_counter() - start
    state = {k: v.numel() * v.element_size() for k, v in model.state_dict().items()}
    return {
        "method": name,
        "device": str(device),
        "threads": threads,
        "fit_s": round(fit_s, 2),
        "ms_per_image": round(1000 * score_s / len(test), 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_rss_mb_before_fit": round(rss_before, 1),
        "model_mb": round(sum(state.values()) / 2**20, 2),
        "model_shapes": {k: list(v.shape) for k, v in model.state_dict().items()},
        "image_auroc_sanity": round(float(roc_auc_score([0] * len(good) + [1] * len(bad), scores)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=200, help="good training images")
    parser.add_argument("--test-images", type=int, default=40, help="scored images (half with a defect)")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--coreset-ratio", type=float, default=BaselinesConfig.coreset_ratio)
    parser.add_argument("--batch-size", type=int, default=BaselinesConfig.batch_size)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--methods", default="patchcore,padim")
    parser.add_argument("--only", choices=sorted(METHODS), help=argparse.SUPPRESS)  # child process
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    args = parser.parse_args()

    if args.only:
        print(json.dumps(run_method(args.only, args)))
        return
    results = []
    for name in args.methods.split(","):
        child = [sys.executable, __file__, "--only", name, *strip_out(sys.argv[1:])]
        out = subprocess.run(child, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    report = {
        "benchmark": "baselines",
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "settings": {k: v for k, v in vars(args).items() if k not in ("only", "out")},
        "config": asdict(BaselinesConfig(input_size=args.input_size, coreset_ratio=args.coreset_ratio)),
        "results": results,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


def strip_out(argv: list[str]) -> list[str]:
    """``argv`` without ``--out PATH`` / ``--out=PATH``."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--out":
            skip = True
        elif not arg.startswith("--out="):
            kept.append(arg)
    return kept


if __name__ == "__main__":
    main()
