"""Throughput of `score_norms`: compute_score_norms with an (untrained) UNet preset.

Reports images/s and image-sigma evaluations/s (one denoiser evaluation of one image at one level) on
CPU for each requested thread count, and on CUDA (bf16 autocast) when present. Weights are random:
the cost does not depend on them.

    python bench/bench_cache_scores.py --threads 1,2 --out reports/bench/score_norms.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from diffad.components.denoiser.unet import build_denoiser
from diffad.components.score_norms import compute_score_norms, score_sigmas
from diffad.components.settings import ScoreNormSettings
from diffad.core.runtime import configure_threads


def cpu_name() -> str:
    """CPU model from /proc/cpuinfo (Linux), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bench_one(device: torch.device, args: argparse.Namespace) -> dict:
    """Time compute_score_norms on ``args.images`` random images after one warm-up batch."""
    torch.manual_seed(0)
    denoiser = build_denoiser(args.preset, args.resolution).to(device).eval()
    cfg = ScoreNormSettings(num_sigmas=args.num_sigmas, batch_size=args.batch_size, input=args.input)
    sigmas = score_sigmas(cfg)
    images = torch.rand(args.images, 3, args.resolution, args.resolution) * 2 - 1
    compute_score_norms(denoiser, images[: args.batch_size], sigmas, cfg, device=device)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    compute_score_norms(
        denoiser, images, sigmas, cfg, device=device, generator=torch.Generator().manual_seed(0)
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    evals = args.images * args.num_sigmas * (cfg.noise_draws if cfg.input == "noised" else 1)
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(),
        "seconds": round(seconds, 3),
        "images_per_s": round(args.images / seconds, 2),
        "image_sigma_evals_per_s": round(evals / seconds, 1),
        "params": sum(p.numel() for p in denoiser.parameters()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="xs")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--num-sigmas", type=int, default=20)
    parser.add_argument("--images", type=int, default=64, help="images timed per device")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--input", choices=["clean", "noised"], default="clean")
    parser.add_argument("--threads", default="1", help="comma-separated CPU thread counts, e.g. 1,2")
    parser.add_argument("--devices", default="cpu,cuda", help="cpu, cuda or both; cuda is skipped if absent")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    args = parser.parse_args()

    runs = []
    wanted = args.devices.split(",")
    if "cpu" in wanted:
        for threads in (int(t) for t in args.threads.split(",")):
            configure_threads(threads)
            runs.append(bench_one(torch.device("cpu"), args))
            print(json.dumps(runs[-1]))
    if "cuda" in wanted and torch.cuda.is_available():
        runs.append(bench_one(torch.device("cuda"), args))
        print(json.dumps(runs[-1]))
    result = {
        "bench": "score_norms",
        "torch": torch.__version__,
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        "runs": runs,
    }
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
