"""The pixel denoiser trained on downscaled images vs. on random crops scored on larger whole images.

    .venv/bin/python bench/denoiser_crops.py --prepared data/prepared --out bench/results/denoiser_crops.json
    .venv/bin/python bench/denoiser_crops.py --scales 64 128 -S train_denoiser.steps=200 --out /tmp/c.json

The UNet is fully convolutional (its middle attention is global), so it can be trained on small
patches and applied to a whole image at a higher resolution. Two ways to spend the same training
budget (``train_denoiser`` of params.yaml: steps, batch, preset, input side R):

    downscale   today's pipeline: every training image downscaled to R, whole images scored at R
    crops@S     the training images downscaled to S > R, ``--crops`` random R x R crops of each
                trained on, whole S x S images scored

Each variant is judged the way the fused weights are chosen, **without test labels**: synthetic
defects (``paste_defects``) in the calibration images, against the same images untouched. Two maps
per variant: MSMA's per-patch score norms (each level standardised on the untouched images, then
averaged) and DDIM's pixel reconstruction distance; maps are upsampled to the working resolution,
image score = map maximum. Output: JSON with pixel / image AUROC, training and scoring seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from real_benchmark import machine_info  # noqa: E402

from diffad.components.denoiser.checkpoint import load_denoiser  # noqa: E402
from diffad.components.denoiser.training import train_denoiser  # noqa: E402
from diffad.components.score_norms import compute_score_norms, score_sigmas  # noqa: E402
from diffad.config import load_params  # noqa: E402
from diffad.core.maps import resize_images, resize_maps  # noqa: E402
from diffad.data.dataset import load_prepared  # noqa: E402
from diffad.methods.ddim.reconstruction import pixel_distance  # noqa: E402
from diffad.methods.ddim.sampling import reconstruct  # noqa: E402
from diffad.methods.fused.detector import paste_defects  # noqa: E402
from diffad.metrics.roc import auroc  # noqa: E402


def random_crops(images: torch.Tensor, side: int, per_image: int, seed: int) -> torch.Tensor:
    """``per_image`` seeded random ``side`` x ``side`` crops of each image (N, C, S, S)."""
    rng = np.random.default_rng(seed)
    limit = images.shape[-1] - side + 1
    crops = []
    for image in images:
        for top, left in rng.integers(0, limit, size=(per_image, 2)):
            crops.append(image[:, top : top + side, left : left + side])
    return torch.stack(crops)


def score_maps(denoiser, images: torch.Tensor, params, side: int) -> dict[str, torch.Tensor]:
    """Per-image maps (N, h, w) of the two detectors on ``images`` downscaled to ``side``."""
    x = resize_images(images, side)
    denoiser.config = {**denoiser.config, "resolution": side}  # score whole images at ``side``
    norms = compute_score_norms(
        denoiser, x, score_sigmas(params.score_norms), params.score_norms, device="cpu"
    )
    generator = torch.Generator().manual_seed(params.seed)
    x_hat = torch.cat([reconstruct(denoiser, b, params.ddim, generator) for b in x.split(16)])
    return {
        "msma_norms": torch.from_numpy(norms.patch_norms.astype(np.float32)),
        "ddim_pixel": pixel_distance(x, x_hat),
    }


def judge(good: dict, pasted: dict, masks: np.ndarray, size: int) -> dict[str, dict[str, float]]:
    """Pixel and image AUROC of each map on pasted vs untouched images (maps at ``size``)."""
    result = {}
    for name in good:
        g, p = good[name], pasted[name]
        if g.ndim == 4:  # score norms (N, L, h, w): each level standardised on the untouched images
            mean, std = g.mean(dim=(0, 2, 3), keepdim=True), g.std(dim=(0, 2, 3), keepdim=True) + 1e-6
            g, p = ((g - mean) / std).mean(dim=1), ((p - mean) / std).mean(dim=1)
        maps = resize_maps(torch.cat([g, p]).float(), (size, size)).numpy()
        pixel_labels = np.concatenate([np.zeros_like(masks), masks]).ravel()
        image_labels = np.r_[np.zeros(len(g)), np.ones(len(p))]
        result[name] = {
            "pixel_auroc": round(float(auroc(pixel_labels, maps.ravel())), 4),
            "image_auroc": round(float(auroc(image_labels, maps.reshape(len(maps), -1).max(axis=1))), 4),
        }
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[], help="param override")
    parser.add_argument("--scales", nargs="+", type=int, default=[64], help="S of the crops variants")
    parser.add_argument("--crops", type=int, default=16, help="random crops per training image")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    params = load_params(args.params, args.overrides)
    side = params.train_denoiser.resolution
    dataset = load_prepared(args.prepared)
    train = dataset.images(dataset.training_rows())
    calibration = dataset.images(dataset.calibration_rows())
    pasted, masks = paste_defects(calibration, params.seed)
    size = calibration.shape[-1]
    result = {
        "bench": "denoiser_crops", "prepared": str(args.prepared), "train_images": len(train),
        "calibration_images": len(calibration), "working_resolution": size, "denoiser_side": side,
        "train_denoiser": dataclasses.asdict(params.train_denoiser),
        "crops_per_image": args.crops, **machine_info(args.threads), "variants": {},
    }  # fmt: skip
    variants = {"downscale": (resize_images(train, side), side)}
    for scale in args.scales:
        variants[f"crops@{scale}"] = (
            random_crops(resize_images(train, scale), side, args.crops, params.seed),
            scale,
        )
    for name, (images, score_side) in variants.items():
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            trained = train_denoiser(
                images,
                params.train_denoiser,
                seed=params.seed,
                device=torch.device("cpu"),
                out_dir=Path(tmp),
                log=lambda s: None,
            )
            train_s = time.perf_counter() - start
            denoiser = load_denoiser(trained.weights)
        start = time.perf_counter()
        good, bad = (
            score_maps(denoiser, calibration, params, score_side),
            score_maps(denoiser, pasted, params, score_side),
        )
        score_s = time.perf_counter() - start
        result["variants"][name] = {
            "training_images": len(images), "scored_at": score_side, "train_seconds": round(train_s, 1),
            "score_seconds": round(score_s, 1), **judge(good, bad, masks, size),
        }  # fmt: skip
        print(f"[crops] {name:12s} {json.dumps(result['variants'][name])}", flush=True)
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
