"""`diffad predict`: score new images with a model bundle.

An image, a folder (recursively), or an MVTec ``test/unknown`` folder -> per-image scores,
decisions and heatmap PNGs, and ``predictions.csv``. Preprocessing (transform, resolution) comes
from the bundle, so it is the training-time one. Unreadable files are reported and skipped (or
stop the run with ``--strict``); nothing is overwritten without ``--force``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from diffad.errors import DataError, DiffadError
from diffad.evaluation.bundle import load_bundle
from diffad.evaluation.thresholds import MethodThresholds
from diffad.runtime import configure_threads, select_device
from diffad.viz.heatmap import overlay_heatmap, save_png

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass
class Prediction:
    score: float  # raw score, larger = more anomalous
    norm_score: float  # [0, 1000], decision threshold at 100
    anomalous: bool
    percentile: float  # share (0-100) of the calibration (held-out good) images scoring lower
    heatmap: np.ndarray | None  # (H, W) float32 at the model resolution
    overlay: np.ndarray | None  # (H', W', 3) uint8 at the input image's resolution (capped)


class Predictor:
    """A loaded bundle. ``predict`` scores one image; ``predict_batch`` a list."""

    def __init__(self, models, meta: dict, thresholds: dict[str, MethodThresholds]) -> None:
        self.models, self.meta, self.thresholds = models, meta, thresholds
        self.methods: list[str] = list(meta["methods"])

    @classmethod
    def load(cls, bundle_dir: str | Path, device: str | torch.device = "cpu") -> Predictor:
        device = select_device(device) if isinstance(device, str) else device
        return cls(*load_bundle(Path(bundle_dir), device))

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """(1, 3, R, R) in [-1, 1], exactly as `convert_dataset` prepared the training images."""
        from diffad.data.transforms import to_model_input

        return to_model_input(image, self.meta["resolution"], self.meta["transform"])

    def good_scores(self, method: str) -> np.ndarray:
        return np.asarray(self.thresholds[self._check(method)].good_scores)

    def _check(self, method: str) -> str:
        if method not in self.thresholds:
            raise DiffadError(f"method {method!r} is not in this bundle (has: {', '.join(self.methods)})")
        return method

    def predict_batch(self, images: Sequence[Image.Image], method: str) -> list[Prediction]:
        self._check(method)
        x = torch.cat([self.preprocess(im) for im in images])
        output = self.models.score(x, (method,))[method]
        t = self.thresholds[method]
        norms, pct, flagged = t.normalize(output.scores), t.percentile(output.scores), t.decide(output.scores)
        results = []
        for i, image in enumerate(images):
            heat = None if output.maps is None else output.maps[i]
            overlay = None
            if heat is not None:
                rgb = np.asarray(image.convert("RGB"))
                side = int(min(min(image.size), 1024))
                overlay = overlay_heatmap(
                    _center_square(rgb), heat, vmin=t.map_vmin, vmax=t.map_vmax, out_size=(side, side)
                )
            results.append(
                Prediction(
                    float(output.scores[i]),
                    float(norms[i]),
                    bool(flagged[i]),
                    float(pct[i]),
                    heat,
                    overlay,
                )
            )
        return results

    def predict(self, image: Image.Image, method: str) -> Prediction:
        return self.predict_batch([image], method)[0]


def _center_square(rgb: np.ndarray) -> np.ndarray:
    """The centre square of an (H, W, 3) image: the region a centre-cropping transform keeps."""
    h, w = rgb.shape[:2]
    s = min(h, w)
    return rgb[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]


def collect_inputs(inputs: Sequence[Path]) -> list[Path]:
    """Image files named directly or found (recursively) in folders, in a stable order."""
    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"{path}: no such file or folder")
    if not files:
        raise DataError(f"no images found in {', '.join(map(str, inputs))}")
    return files


def predict_files(
    predictor: Predictor,
    files: Sequence[Path],
    method: str,
    out_dir: Path,
    *,
    strict: bool = False,
    batch_size: int = 16,
) -> pd.DataFrame:
    """Score ``files``, write heatmaps and ``predictions.csv`` under ``out_dir``; return the table."""
    from diffad.data.images import read_image

    rows, skipped = [], []
    loaded: list[tuple[Path, Image.Image]] = []
    for path in files:
        try:
            loaded.append((path, read_image(path)))
        except DataError as exc:
            if strict:
                raise
            skipped.append({"path": str(path), "error": str(exc)})
            log.warning("skipped %s", exc)
    (out_dir / "heatmaps").mkdir(parents=True, exist_ok=True)
    for start in range(0, len(loaded), batch_size):
        chunk = loaded[start : start + batch_size]
        for (path, _), pred in zip(
            chunk, predictor.predict_batch([im for _, im in chunk], method), strict=True
        ):
            heatmap_path = ""
            if pred.overlay is not None:
                heatmap_path = str(save_png(pred.overlay, out_dir / "heatmaps" / f"{start}_{path.stem}.png"))
            rows.append(
                {
                    "path": str(path),
                    "method": method,
                    "score": pred.score,
                    "norm_score": pred.norm_score,
                    "anomalous": pred.anomalous,
                    "percentile": pred.percentile,
                    "heatmap": heatmap_path,
                }
            )
    table = pd.DataFrame(
        rows, columns=["path", "method", "score", "norm_score", "anomalous", "percentile", "heatmap"]
    )
    table.to_csv(out_dir / "predictions.csv", index=False)
    if skipped:
        pd.DataFrame(skipped).to_csv(out_dir / "skipped.csv", index=False)
    return table


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="diffad predict", description=__doc__.strip().splitlines()[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="image files and/or folders")
    parser.add_argument("--bundle", type=Path, default=Path("models/bundle"), help="model bundle folder")
    parser.add_argument("--method", default="ensemble", help="method to score with (default: ensemble)")
    parser.add_argument("--out", type=Path, default=Path("predictions"), help="output folder")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output folder's results")
    parser.add_argument("--strict", action="store_true", help="stop at the first unreadable file")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if (args.out / "predictions.csv").exists() and not args.force:
        raise DiffadError(f"{args.out / 'predictions.csv'} exists; use --force to overwrite or choose --out")
    configure_threads(args.threads)
    predictor = Predictor.load(args.bundle, args.device)
    files = collect_inputs(args.inputs)
    table = predict_files(predictor, files, args.method, args.out, strict=args.strict)
    print(table.drop(columns=["heatmap"]).to_string(index=False))
    print(f"\n{int(table['anomalous'].sum())} of {len(table)} anomalous; results in {args.out}")
