"""GPU figures in one call: training steps/s, score caching (image·σ/s), evaluation, at 64 and 128 px, bf16.

For each resolution, on random images (the cost does not depend on the weights):
    train      EDM training steps (AdamW, bf16 autocast) of the ``--preset`` UNet: steps/s, images/s
    cache      MSMA score norms at ``--num-sigmas`` levels: image·σ evaluations/s
    evaluate   the DDIM reconstruction detector (denoiser + backbone features): images/s
plus the peak CUDA memory of each part and the share of the GPU's bf16 dense peak it reaches
(FLOPs counted once with torch's FlopCounterMode; the peak from ``--peak-tflops`` or a table of
known GPUs). Exits with status 2 and says so when no CUDA GPU is present: nothing here runs on CPU.

    bash bench/gpu.sh            # = python bench/gpu_bench.py --out bench/results/gpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity), from the vendors' data sheets.
BF16_PEAK_TFLOPS = {
    "H200": 989.0,
    "H100 SXM": 989.0,
    "H100 PCIe": 756.0,
    "H100": 756.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
    "RTX 4090": 165.0,
}


def peak_tflops(name: str, override: float | None) -> float | None:
    if override:
        return override
    for key, value in BF16_PEAK_TFLOPS.items():  # most specific first
        if key in name:
            return value
    return None


def timed(fn, device: torch.device, repeats: int) -> tuple[float, float, int]:
    """(seconds per call after one warm-up call, FLOPs per call, peak bytes) of ``fn()``."""
    fn()
    torch.cuda.synchronize(device)
    with FlopCounterMode(display=False) as counter:
        fn()
    flops = counter.get_total_flops()
    torch.cuda.reset_peak_memory_stats(device)
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / repeats, float(flops), torch.cuda.max_memory_allocated(device)


def bench_resolution(
    resolution: int, args: argparse.Namespace, device: torch.device, peak: float | None
) -> dict:
    from diffad.components.backbone import FeatureExtractor
    from diffad.components.denoiser.loss import edm_loss, sample_sigmas
    from diffad.components.denoiser.unet import build_denoiser
    from diffad.components.score_norms import compute_score_norms, score_sigmas
    from diffad.components.settings import ScoreNormSettings
    from diffad.methods.ddim.reconstruction import DDIMDetector
    from diffad.methods.ddim.settings import DdimSettings

    torch.manual_seed(0)
    gen = torch.Generator(device=device).manual_seed(0)
    denoiser = build_denoiser(args.preset, resolution).to(device).to(memory_format=torch.channels_last)
    optimiser = torch.optim.AdamW(denoiser.parameters(), lr=1e-4)
    images = torch.rand(args.batch_size, 3, resolution, resolution, device=device) * 2 - 1

    def train_step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            sigma = sample_sigmas(len(images), -1.2, 1.2, gen)
            loss = edm_loss(
                denoiser, images, sigma, torch.randn(images.shape, device=device, generator=gen)
            ).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    out = {"resolution": resolution, "batch_size": args.batch_size, "preset": args.preset}
    seconds, flops, memory = timed(train_step, device, args.steps)
    out["train"] = {"steps_per_s": 1 / seconds, "images_per_s": args.batch_size / seconds}
    out["train"].update(_usage(flops, seconds, memory, peak))

    denoiser.eval()
    cfg = ScoreNormSettings(num_sigmas=args.num_sigmas, batch_size=args.batch_size)
    sigmas = score_sigmas(cfg)
    cache_images = images.detach().cpu()

    def cache():
        with torch.no_grad():
            compute_score_norms(denoiser, cache_images, sigmas, cfg, device=device)

    seconds, flops, memory = timed(cache, device, max(1, args.steps // 10))
    out["cache"] = {"image_sigma_per_s": len(cache_images) * args.num_sigmas / seconds}
    out["cache"].update(_usage(flops, seconds, memory, peak))

    detector = DDIMDetector(denoiser, FeatureExtractor(blocks=(1, 2)).to(device), DdimSettings(), device)

    def evaluate():
        with torch.no_grad():
            detector.score(cache_images)

    seconds, flops, memory = timed(evaluate, device, max(1, args.steps // 10))
    out["evaluate"] = {"images_per_s": len(cache_images) / seconds}
    out["evaluate"].update(_usage(flops, seconds, memory, peak))
    return out


def _usage(flops: float, seconds: float, memory: int, peak: float | None) -> dict:
    tflops = flops / seconds / 1e12
    return {
        "tflops_per_s": round(tflops, 2),
        "fraction_of_bf16_peak": None if peak is None else round(tflops / peak, 4),
        "peak_memory_gib": round(memory / 2**30, 3),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", default="64,128")
    parser.add_argument("--preset", default="s")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--steps", type=int, default=50, help="timed training steps (cache/evaluate: a tenth)"
    )
    parser.add_argument("--num-sigmas", type=int, default=20)
    parser.add_argument("--peak-tflops", type=float, default=None, help="bf16 dense peak of this GPU")
    parser.add_argument("--out", type=Path, default=Path("bench/results/gpu.json"))
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(
            "bench/gpu_bench.py: no CUDA GPU visible (torch.cuda.is_available() is False); "
            "run it on a machine with one. Nothing was measured.",
            file=sys.stderr,
        )
        return 2
    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    peak = peak_tflops(name, args.peak_tflops)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    result = {
        "device": name,
        "torch": torch.__version__,
        "bf16_peak_tflops": peak,
        "runs": [bench_resolution(int(r), args, device, peak) for r in args.resolutions.split(",")],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
