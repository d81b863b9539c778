"""Training throughput of `train_denoiser` (images/s) for a UNet preset, on CPU and CUDA.

Runs the real training loop (:func:`diffad.components.denoiser.training.train_denoiser`) on random images:
two warm-up steps, stopped and then resumed from their checkpoint for the timed steps, so the
number excludes start-up and the sample grid. bf16 autocast + channels-last on CUDA.

    python bench/bench_train_ddim.py --threads 1 --resolutions 64,32 --out bench/results/train_denoiser.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
from pathlib import Path

import torch

from diffad.components.denoiser.settings import TrainDenoiserSettings
from diffad.components.denoiser.training import train_denoiser
from diffad.components.denoiser.unet import build_denoiser
from diffad.core.runtime import configure_threads

WARMUP_STEPS = 2


def cpu_name() -> str:
    """CPU model from /proc/cpuinfo (Linux), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bench_one(device: torch.device, resolution: int, args: argparse.Namespace) -> dict:
    """Images/s of ``args.images`` training images at ``resolution`` after the warm-up steps."""
    steps = WARMUP_STEPS + math.ceil(args.images / args.batch_size)
    cfg = TrainDenoiserSettings(
        preset=args.preset,
        batch_size=args.batch_size,
        steps=steps,
        checkpoint_every=10**6,
        log_every=10**6,
        sample_count=1,
        sample_steps=1,
    )
    images = torch.rand(64, 3, resolution, resolution, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with tempfile.TemporaryDirectory() as tmp:
        quiet = lambda _: None  # noqa: E731
        train_denoiser(
            images, cfg, seed=0, device=device, out_dir=Path(tmp), log=quiet, max_steps_this_run=WARMUP_STEPS
        )
        result = train_denoiser(images, cfg, seed=0, device=device, out_dir=Path(tmp), log=quiet)
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(),
        "resolution": resolution,
        "batch_size": args.batch_size,
        "timed_images": result.steps_this_run * args.batch_size,
        "images_per_s": round(result.images_per_s, 2),
        "params": sum(p.numel() for p in build_denoiser(args.preset, resolution).parameters()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="xs")
    parser.add_argument("--resolutions", default="64,32", help="comma-separated image sides")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--images", type=int, default=192, help="images timed per run (rounded up to batches)"
    )
    parser.add_argument("--threads", default="1", help="comma-separated CPU thread counts, e.g. 1,2")
    parser.add_argument("--devices", default="cpu,cuda", help="cpu, cuda or both; cuda is skipped if absent")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    args = parser.parse_args()

    runs = []
    resolutions = [int(r) for r in args.resolutions.split(",")]
    wanted = args.devices.split(",")
    if "cpu" in wanted:
        for threads in (int(t) for t in args.threads.split(",")):
            configure_threads(threads)
            for resolution in resolutions:
                runs.append(bench_one(torch.device("cpu"), resolution, args))
                print(json.dumps(runs[-1]), flush=True)
    if "cuda" in wanted and torch.cuda.is_available():
        for resolution in resolutions:
            runs.append(bench_one(torch.device("cuda"), resolution, args))
            print(json.dumps(runs[-1]), flush=True)
    result = {
        "bench": "train_denoiser",
        "torch": torch.__version__,
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        "runs": runs,
    }
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
