"""Screen settings of ``msma_features`` without the pipeline: synthetic defects choose, test reports.

One command (from the project root)::

    .venv/bin/python bench/screen_features.py --categories tissue moon \\
        -S msma_features.hidden=384 --out bench/results/ablation/features_h384.json

For each real-photo category (bench/real_data.py) it prepares the data as `convert_dataset` does
(``params.yaml`` + overrides), fits ``msma_features`` and PatchCore on the good training images and
scores (1) **synthetic defects**: the fused detector's pasted defects (``paste_defects``) in the
calibration images against the same images untouched: the numbers a setting is chosen on, since
no test label is read; (2) the **test set**, reported beside them, never used to choose.
Output: JSON with image / pixel AUROC of both methods on both, and the fit seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from real_data import CATEGORIES, ONE_CLASS, build_category  # noqa: E402

from diffad.components.backbone import FeatureExtractor  # noqa: E402
from diffad.config import load_params  # noqa: E402
from diffad.data.dataset import load_prepared  # noqa: E402
from diffad.data.prepare import prepare_dataset  # noqa: E402
from diffad.methods.fused.detector import paste_defects  # noqa: E402
from diffad.methods.msma_features.model import FeatureMsma  # noqa: E402
from diffad.methods.patchcore.model import PatchCore  # noqa: E402
from diffad.metrics.roc import auroc  # noqa: E402


def aurocs(model, images: torch.Tensor, labels: np.ndarray, masks: np.ndarray | None) -> dict:
    scores, maps = model.score(images)
    out = {"image_auroc": round(auroc(labels, scores), 4)}
    if masks is not None:
        out["pixel_auroc"] = round(auroc(masks.reshape(-1), maps.reshape(-1)), 4)
    return out


def screen(name: str, work: Path, overrides: list[str], seed: int) -> dict:
    source = "folder" if name in ONE_CLASS else "mvtec"
    data = work / "data" / name
    build_category(name, data, seed)
    params = load_params(
        ROOT / "params.yaml",
        [f"data.source={source}", f"data.path={data}", f"data.category={name}", *overrides],
    )
    prepare_dataset(params.data, params.convert_dataset, params.seed, work / "prepared" / name)
    dataset = load_prepared(work / "prepared" / name)
    train = dataset.images(dataset.training_rows())
    calibration = dataset.images(dataset.calibration_rows())
    test_rows = dataset.manifest[(dataset.manifest.split == "test") & (dataset.manifest.label != "unknown")]
    test = dataset.images(test_rows)
    test_labels = (test_rows.label != "good").to_numpy().astype(int)
    pasted, pasted_masks = paste_defects(calibration, params.seed)
    synthetic = torch.cat([calibration, pasted])
    synthetic_labels = np.r_[np.zeros(len(calibration)), np.ones(len(pasted))].astype(int)
    synthetic_masks = np.concatenate([np.zeros_like(pasted_masks), pasted_masks])

    cfg = params.backbone
    extractor = FeatureExtractor(cfg.feature_blocks, cfg.input_size, border_pad=cfg.border_pad)
    result = {}
    for method, model_type in (("msma_features", FeatureMsma), ("patchcore", PatchCore)):
        start = time.perf_counter()
        model = model_type(extractor, cfg, getattr(params, method)).fit(train, seed=params.seed)
        result[method] = {
            "fit_seconds": round(time.perf_counter() - start, 1),
            "synthetic": aurocs(model, synthetic, synthetic_labels, synthetic_masks),
            "test": aurocs(model, test, test_labels, dataset.masks(test_rows)),
        }
        print(f"[screen] {name:8s} {method:14s} {json.dumps(result[method])}", flush=True)
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--categories", nargs="+", default=list(CATEGORIES), choices=CATEGORIES)
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[], help="param override")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0, help="data seed")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    result = {"overrides": args.overrides, "categories": {}}
    with tempfile.TemporaryDirectory(prefix="diffad-screen-") as work:
        for name in args.categories:
            result["categories"][name] = screen(name, Path(work), args.overrides, args.seed)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2))
    print(f"[screen] wrote {args.out}")


if __name__ == "__main__":
    main()
