"""The backbone-fitted methods alone (PatchCore, PaDiM and the diffusion-using ``msma_features``) on
one category of the real-photo benchmark, at the working resolution: no pixel denoiser, so a lever
of ``data.*``, ``backbone.*`` or a method's section is measured in minutes instead of a whole
pipeline.

    .venv/bin/python bench/backbone_screen.py --categories moon stars --out /tmp/screen.json
    .venv/bin/python bench/backbone_screen.py --categories moon -S backbone.border_pad=0
    .venv/bin/python bench/backbone_screen.py --prepared data/prepared --max-train 64 \\
        --methods padim patchcore -S backbone.border_pad=0 --out /tmp/demo_border.json

Each category is built by bench/real_data.py and prepared by the library's ``prepare_dataset``
at ``data.resolution``; the models are fitted on the train split (calibration and test never),
then image AUROC, pixel AUROC and AUPRO on the test split are computed with ``diffad.metrics``,
as ``evaluate`` does, and ``border_peak_share`` on its good images. Seconds are wall time on a
possibly shared machine (the load average is recorded).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_data import CATEGORIES, ONE_CLASS, build_category  # noqa: E402

from diffad.config import load_params  # noqa: E402
from diffad.data.dataset import load_prepared  # noqa: E402
from diffad.data.prepare import prepare_dataset  # noqa: E402
from diffad.methods.msma_features.model import FeatureMsma  # noqa: E402
from diffad.methods.padim.model import PaDiM  # noqa: E402
from diffad.methods.patchcore.model import PatchCore  # noqa: E402
from diffad.metrics import aupro, auroc  # noqa: E402
from diffad.metrics.border import border_peak_share  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METHODS = {"msma_features": FeatureMsma, "patchcore": PatchCore, "padim": PaDiM}


def prepare(name: str, params, work: Path) -> Path:
    """Category ``name`` of bench/real_data.py, prepared at ``data.resolution`` under ``work``."""
    raw = work / "raw" / name
    build_category(name, raw)
    source = "folder" if name in ONE_CLASS else "mvtec"
    data = dataclasses.replace(params.data, source=source, path=str(raw), category=name)
    prepare_dataset(data, params.convert_dataset, params.seed, work / "prepared" / name)
    return work / "prepared" / name


def screen(
    name: str, prepared: Path, params, methods: list[str], max_train: int | None, device: str = "cpu"
) -> dict:
    dataset = load_prepared(prepared)
    manifest = dataset.manifest
    train = dataset.images(dataset.training_rows().iloc[:max_train])
    test = manifest[(manifest["split"] == "test") & (manifest["label"] != "unknown")]
    labels = (test["label"] == "anomaly").to_numpy()
    images = dataset.images(test)
    masks = dataset.masks(test) if dataset.has_masks else None
    out = {}
    for method in methods:
        cls = METHODS[method]
        start = time.perf_counter()
        model = cls(None, params.backbone, getattr(params, method), device).fit(train, seed=params.seed)
        fitted = time.perf_counter()
        scores, maps = zip(*(model.score(chunk) for chunk in images.split(32)), strict=True)
        scores, maps = np.concatenate(scores), np.concatenate(maps)
        out[method] = {
            "image_auroc": auroc(labels, scores),
            "pixel_auroc": None if masks is None else auroc(masks.ravel(), maps.ravel()),
            "aupro": None if masks is None else aupro(masks, maps),
            "border_peak_share": border_peak_share(maps[~labels]),
            "fit_s": round(fitted - start, 1),
            "score_ms_per_image": round(1000 * (time.perf_counter() - fitted) / len(images), 1),
        }
        print(f"[screen] {name} {method} {out[method]}", flush=True)
    return {"train_images": len(train), "test_images": len(images), "methods": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--categories", nargs="+", default=list(CATEGORIES), choices=CATEGORIES)
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[], help="param override")
    parser.add_argument(
        "--prepared", type=Path, help="screen this prepared dataset (e.g. the demo's) instead"
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--max-train", type=int, default=None, help="fit on the first N training images")
    parser.add_argument("--device", default="cpu", help="cpu | cuda: where the models are fitted and scored")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = load_params(ROOT / "params.yaml", args.overrides)
    result = {
        "overrides": args.overrides,
        "resolution": params.data.resolution,
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "categories": {},
    }
    names = [args.prepared.name] if args.prepared else args.categories
    for name in names:
        load = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="diffad-screen-") as tmp:
            prepared = args.prepared or prepare(name, params, Path(tmp))
            measured = screen(name, prepared, params, args.methods, args.max_train, args.device)
            result["categories"][name] = {**measured, "load_before": load}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
