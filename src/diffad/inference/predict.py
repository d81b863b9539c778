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
:mod:`diffad.inference.predict_outputs`; the loaded bundle that scores is
:class:`~diffad.inference.predictor.Predictor`, which files are read :mod:`diffad.inference.input_files`.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from diffad.artifacts.layout import MONITORING, MonitoringDir
from diffad.core.errors import ConfigError, DataError, DiffadError
from diffad.core.files import safe_name
from diffad.core.jsonl import utc_now
from diffad.core.runtime import configure_threads
from diffad.data.images import read_image
from diffad.inference.input_files import scan_inputs
from diffad.inference.predict_outputs import PREDICTIONS, SKIPPED, OutputFolder, output_names
from diffad.inference.predictor import Predictor, PreparedInput
from diffad.inference.scores_log import check_appendable, log_predictions
from diffad.inference.serving import SERVED_METHOD
from diffad.registry import fetch_bundle

# What `diffad predict` offers, wherever it is defined (the dashboard and the benches import these).

log = logging.getLogger(__name__)

COLUMNS = ["path", "method", "score", "norm_score", "anomalous", "percentile", "heatmap"]


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
