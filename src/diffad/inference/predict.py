"""`diffad predict`: score new images with a model bundle.

An image, a folder (recursively), or an MVTec ``test/unknown`` folder -> per-image scores,
decisions and heatmap PNGs, and ``predictions.csv``. Preprocessing (transform, resolution) comes
from the bundle, so it is the training-time one, and images are read by the same reader as
``convert_dataset`` and the dashboard (:mod:`diffad.data.images`).

Images stream through in batches: each file is decoded, reduced to the model input and a
display-sized view, and dropped before the next is read, so memory does not grow with the
number (or size) of the inputs. An input that is cropped or resized gets a warning. Unreadable
files are reported and skipped (or stop the run with ``--strict``). The output folder's rules
(unique names mirroring the input tree, no overwriting, no writes through links) are in
:mod:`diffad.inference.predict_outputs`.
"""

from __future__ import annotations

import argparse
import logging
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from diffad.artifacts.layout import MONITORING, MonitoringDir
from diffad.data.images import read_image, to_rgb
from diffad.data.transforms import plan_geometry, to_model_input
from diffad.detectors import SERVED_METHOD
from diffad.errors import ConfigError, DataError, DiffadError
from diffad.evaluation.thresholds import MethodThresholds
from diffad.feedback.verdicts import utc_now
from diffad.files import safe_name
from diffad.inference.bundle import load_bundle
from diffad.inference.predict_outputs import PREDICTIONS, SKIPPED, OutputFolder, output_names
from diffad.monitoring.scores_log import check_appendable, log_predictions
from diffad.registry import fetch_bundle
from diffad.runtime import configure_threads, select_device
from diffad.viz.heatmap import add_colorbar, overlay_heatmap

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
MAX_VIEW = 1024  # side of the overlay's image, at most (px)
COLUMNS = ["path", "method", "score", "norm_score", "anomalous", "percentile", "heatmap"]


@dataclass
class Prediction:
    score: float  # raw score, larger = more anomalous
    norm_score: float  # [0, 1000], decision threshold at 100
    anomalous: bool
    percentile: float  # share (0-100) of the calibration (held-out good) images scoring lower
    heatmap: np.ndarray | None  # (H, W) float32 at the bundle's working resolution (data.resolution)
    overlay: np.ndarray | None  # (H', W' + bar, 3) uint8: the input's resolution (capped), a colour scale
    change: str = ""  # how the input was cropped or scaled to the bundle's resolution; "" if not


@dataclass(frozen=True)
class PreparedInput:
    """What scoring one image needs, without the full-size decode: a few hundred KB at most."""

    x: torch.Tensor  # (1, 3, R, R) float32 in [-1, 1], the model input
    view: np.ndarray  # (S, S, 3) uint8, the centre square at most MAX_VIEW px, for the overlay
    change: str  # "" when the image is already R x R, otherwise how it was cropped/resized
    source_size: tuple[int, int]  # (W, H) of the decoded image


class Predictor:
    """A loaded bundle. ``predict`` scores one image; ``predict_batch`` a list."""

    def __init__(
        self, models, meta: dict, thresholds: dict[str, MethodThresholds], bundle_id: str | None = None
    ) -> None:
        self.models, self.meta, self.thresholds = models, meta, thresholds
        self.methods: list[str] = list(meta["methods"])
        self.bundle_id = bundle_id  # the id of the bundle these were all loaded from, at once

    @classmethod
    def load(cls, bundle_dir: str | Path, device: str | torch.device = "cpu") -> Predictor:
        device = select_device(device) if isinstance(device, str) else device
        bundle = load_bundle(Path(bundle_dir), device)
        return cls(bundle.models, bundle.meta, bundle.thresholds, bundle.bundle_id)

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """(1, 3, R, R) in [-1, 1], exactly as `convert_dataset` prepared the training images."""
        return to_model_input(image, self.meta["resolution"], self.meta["transform"])

    def prepare(self, image: Image.Image) -> PreparedInput:
        """The model input, the overlay's view and a note on cropping/resizing of ``image``."""
        rgb = to_rgb(image)  # the image itself when already RGB: a huge input is not copied
        (w, h), s = rgb.size, min(rgb.size)
        box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)  # centre square
        side = min(s, MAX_VIEW)
        view = rgb.resize((side, side), Image.Resampling.BILINEAR, box=box) if side != s else rgb.crop(box)
        change = self.describe_change(image.size)
        return PreparedInput(self.preprocess(image), np.asarray(view), change, image.size)

    def describe_change(self, size: tuple[int, int]) -> str:
        """How the bundle's preprocessing changes a (W, H) input; "" when it is used as it is."""
        resolution, transform = self.meta["resolution"], self.meta["transform"]
        if size == (resolution, resolution):
            return ""
        geometry = plan_geometry(size, resolution, transform)
        if transform == "resize" and size[0] != size[1]:
            return f"{size[0]}x{size[1]} is resized to {resolution}x{resolution} (aspect ratio not kept)"
        left, top, right, bottom = geometry.crop
        if (right - left, bottom - top) != geometry.scaled:
            kept = min(size)
            return (
                f"{size[0]}x{size[1]} is cropped to its centre {kept}x{kept} and scaled to "
                f"{resolution}x{resolution}; only that square is scored"
            )
        return f"{size[0]}x{size[1]} is scaled to {resolution}x{resolution}"

    def good_scores(self, method: str) -> np.ndarray:
        return np.asarray(self.thresholds[self._check(method)].good_scores)

    def _check(self, method: str) -> str:
        if method not in self.thresholds:
            raise DiffadError(f"method {method!r} is not in this bundle (has: {', '.join(self.methods)})")
        return method

    def score(self, inputs: Sequence[PreparedInput], method: str) -> list[Prediction]:
        """Score prepared inputs in one batch."""
        self._check(method)
        output = self.models.score(torch.cat([p.x for p in inputs]), (method,))[method]
        t = self.thresholds[method]
        norms, pct, flagged = t.normalize(output.scores), t.percentile(output.scores), t.decide(output.scores)
        results = []
        for i, prepared in enumerate(inputs):
            heat = None if output.maps is None else output.maps[i]
            overlay = None
            if heat is not None:
                side = prepared.view.shape[0]
                overlay = add_colorbar(
                    overlay_heatmap(
                        prepared.view, heat, vmin=t.map_vmin, vmax=t.map_vmax, out_size=(side, side)
                    )
                )
            results.append(
                Prediction(
                    float(output.scores[i]),
                    float(norms[i]),
                    bool(flagged[i]),
                    float(pct[i]),
                    heat,
                    overlay,
                    prepared.change,
                )
            )
        return results

    def predict_batch(self, images: Sequence[Image.Image], method: str) -> list[Prediction]:
        return self.score([self.prepare(image) for image in images], method)

    def predict(self, image: Image.Image, method: str) -> Prediction:
        return self.predict_batch([image], method)[0]


def collect_inputs(inputs: Sequence[Path]) -> list[Path]:
    """Image files named directly or found (recursively) in folders, in a stable order, once each."""
    return scan_inputs(inputs)[0]


def scan_inputs(inputs: Sequence[Path]) -> tuple[list[Path], list[dict[str, str]]]:
    """(image files, skipped): files named directly or found (recursively) in folders, in a
    stable order, once each; entries with an image suffix that are not regular files (a FIFO, a
    device, a dangling link, a folder named ``x.png``) are skipped with the reason, never read."""
    files: list[Path] = []
    skipped: list[dict[str, str]] = []
    for path in inputs:
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists() or path.is_symlink():
            candidates = [path]
        else:
            raise DataError(f"{safe_name(path)}: no such file or folder")
        for candidate in candidates:
            reason = not_a_regular_file(candidate)
            if reason:
                skipped.append({"path": safe_name(candidate), "error": f"{safe_name(candidate)}: {reason}"})
            else:
                files.append(candidate)
    if not files:
        raise DataError(f"no images found in {', '.join(safe_name(p) for p in inputs)}")
    return list(dict.fromkeys(files)), skipped


def not_a_regular_file(path: Path) -> str:
    """Why ``path`` is not an image file to read ("" when it is a regular file, or a link to one)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "a dangling link" if path.is_symlink() else "vanished"
    except OSError as exc:
        return f"cannot be examined ({exc.strerror})"
    if stat.S_ISREG(mode):
        return ""
    kinds = {stat.S_ISDIR: "a folder", stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket"}
    kind = next((name for test, name in kinds.items() if test(mode)), "a device")
    return f"{'a link to ' if path.is_symlink() else ''}{kind}, not an image file"


def predict_files(
    predictor: Predictor,
    files: Sequence[Path],
    method: str,
    out_dir: Path,
    *,
    strict: bool = False,
    force: bool = False,
    batch_size: int = 16,
    not_files: Sequence[dict[str, str]] = (),
) -> pd.DataFrame:
    """Score ``files``, write heatmaps and ``predictions.csv`` under ``out_dir``; return the table.

    At most ``batch_size`` prepared inputs are held at a time (see the module docstring).
    ``not_files``: inputs :func:`scan_inputs` skipped, listed with the unreadable ones. The
    table's ``path`` and ``heatmap`` are :func:`safe_name` text; ``table.attrs["sources"]`` holds
    the input files themselves.
    """
    from diffad.viz.heatmap import save_png

    names = output_names(files)
    out = OutputFolder(out_dir, names, force=force)
    rows: list[dict] = []
    skipped: list[dict[str, str]] = list(not_files)
    sources: list[Path] = []
    for batch in _batches(_prepared(predictor, files, names, skipped, strict), batch_size):
        predictions = predictor.score([prepared for _, _, prepared in batch], method)
        for (path, name, _), pred in zip(batch, predictions, strict=True):
            heatmap_path = ""
            if pred.overlay is not None:
                heatmap_path = safe_name(out.write(name, lambda tmp, a=pred.overlay: save_png(a, tmp)))
            sources.append(path)
            rows.append(
                {
                    "path": safe_name(path),
                    "method": method,
                    "score": pred.score,
                    "norm_score": pred.norm_score,
                    "anomalous": pred.anomalous,
                    "percentile": pred.percentile,
                    "heatmap": heatmap_path,
                }
            )
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs["sources"] = sources  # the files themselves, row by row (names may not be UTF-8)
    out.write(PREDICTIONS, lambda tmp: table.to_csv(tmp, index=False))
    if skipped:
        out.write(SKIPPED, lambda tmp: pd.DataFrame(skipped).to_csv(tmp, index=False))
    out.finish()
    return table


def _prepared(
    predictor: Predictor, files: Sequence[Path], names: Sequence[str], skipped: list, strict: bool
) -> Iterator[tuple[Path, str, PreparedInput]]:
    """(path, heatmap name, prepared input) per readable file; the decoded image is dropped here."""
    scaled_sizes: set[tuple[int, int]] = set()
    for path, name in zip(files, names, strict=True):
        try:
            image = read_image(path)
        except DataError as exc:
            if strict:
                raise
            skipped.append({"path": safe_name(path), "error": safe_name(str(exc))})
            log.warning("skipped %s", exc)
            continue
        prepared = predictor.prepare(image)
        del image
        if prepared.change and prepared.source_size[0] != prepared.source_size[1]:
            log.warning("%s: %s", path, prepared.change)  # content is lost or distorted: every time
        elif prepared.change and prepared.source_size not in scaled_sizes:
            scaled_sizes.add(prepared.source_size)
            log.warning("%s: %s (said once per input size)", path, prepared.change)
        yield path, name, prepared


def _batches(items: Iterator, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="diffad predict", description=__doc__.strip().splitlines()[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="image files and/or folders")
    parser.add_argument("--bundle", type=Path, default=Path("models/bundle"), help="model bundle folder")
    parser.add_argument(
        "--method", default=SERVED_METHOD, help=f"method to score with (default: {SERVED_METHOD})"
    )
    parser.add_argument("--out", type=Path, default=Path("predictions"), help="output folder")
    parser.add_argument(
        "--force", action="store_true", help="replace a previous predict run's results in --out"
    )
    parser.add_argument("--strict", action="store_true", help="stop at the first unreadable file")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: a GPU if any)")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (default 0: the cores not busy now)"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="images scored at once (memory ~ this)")
    parser.add_argument(
        "--scores-log",
        type=Path,
        default=Path(MONITORING),
        help=f"append each decision to <this>/<category>/scores.jsonl (default {MONITORING}; monitoring)",
    )
    parser.add_argument("--no-scores-log", action="store_true", help="do not append to the scores log")
    parser.add_argument(
        "--category",
        help="serve this category's prod model from the model registry (fetched; replaces --bundle)",
    )
    parser.add_argument(
        "--registry",
        default=os.environ.get("DIFFAD_REGISTRY"),
        help="git URL of the model registry (default: $DIFFAD_REGISTRY)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.threads < 0:
        raise ConfigError(f"--threads: {args.threads} is negative; give a count, or 0 for the free cores")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size: {args.batch_size} must be at least 1")
    if args.out.exists() and not args.out.is_dir():
        raise DiffadError(f"--out {args.out}: is a file, not a folder; choose a folder for the results")
    if args.category:
        if not args.registry:
            raise ConfigError("--category: give the model registry with --registry URL or $DIFFAD_REGISTRY")
        version, args.bundle = fetch_bundle(Path.cwd(), args.registry, args.category)
        print(f"serving {version.tag} (prod in {args.registry}) from {args.bundle}")
    configure_threads(args.threads)
    predictor = Predictor.load(args.bundle, args.device)
    log = MonitoringDir(args.scores_log).scores_log(predictor.meta["category"])
    if not args.no_scores_log:  # before any scoring: an unwritable log must not cost the run
        check_appendable(log)
    files, not_files = scan_inputs(args.inputs)
    options = {"strict": args.strict, "force": args.force, "batch_size": args.batch_size}
    table = predict_files(predictor, files, args.method, args.out, not_files=not_files, **options)
    print(table.drop(columns=["heatmap"]).to_string(index=False))
    print(f"\n{summary_line(table, args.out)}")
    if not args.no_scores_log:  # production monitoring (diffad.monitoring): who scored what, when
        threshold = predictor.thresholds[args.method].threshold
        when = utc_now()
        log_predictions(
            log,
            table,
            category=predictor.meta["category"],
            bundle=predictor.bundle_id,
            threshold=threshold,
            time=when,
        )
        print(f"{len(table)} decisions appended to {log}")


def summary_line(table: pd.DataFrame, out: Path) -> str:
    """The run's last line: decisions, and the inputs that were not scored (so none go unnoticed)."""
    line = f"{int(table['anomalous'].sum())} of {len(table)} anomalous"
    skipped = out / SKIPPED
    if skipped.is_file():
        line += f"; {len(pd.read_csv(skipped))} skipped, not scored (see {skipped})"
    return f"{line}; results in {out}"
