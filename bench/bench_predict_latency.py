"""`diffad predict` latency per method, at batch 16 and batch 1, on a bundle the pipeline wrote; JSON output.

    python bench/bench_predict_latency.py --bundle models/bundle --images data/prepared \\
        --out bench/results/predict_latency.json
    python bench/bench_predict_latency.py --bundle /tmp/run/project/models/bundle \\
        --images /tmp/run/data/tissue/test --methods fused patchcore --batch-sizes 16 1

Goal it measures (issue 22): the served method at 256 px, at most 200 ms an image at batch 16 and
at most 400 ms at batch 1, on the 2-core machine.

For each method, in one process: the bundle is loaded once (``load_seconds``, not per image), one
warm-up batch is scored, then ``predict_files`` (what `diffad predict` runs: decode, crop/scale,
score, overlay, heatmap PNG, predictions.csv) scores ``--count`` images at each batch size into a
fresh folder: ``ms_per_image`` = its wall time / images. ``model_ms_per_image`` is the scoring
call alone (``Predictor.score`` on inputs prepared beforehand), so the rest is I/O and drawing.
Inputs are the first ``--count`` images found under ``--images`` (recursively), cycled when fewer;
their size and the bundle's working resolution are recorded. ``--threads`` torch threads
(default 1: the machine is shared); timings on a loaded machine are inflated, so the 1-minute load
average is recorded beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_benchmark import machine_info  # noqa: E402

GOALS_MS = {16: 200.0, 1: 400.0}  # served method, per image, at 256 px on 2 cores


def pick_inputs(found: list[Path], count: int) -> list[Path]:
    """``count`` inputs from ``found`` in order, cycling when there are fewer (each is scored anew)."""
    if not found:
        raise ValueError("no input images")
    return list(islice(cycle(found), count))


def time_method(predictor, method: str, files: list[Path], batch_sizes: list[int], work: Path) -> dict:
    """Per batch size: wall ms per image of predict_files and of the scoring call alone."""
    from diffad.inference.predict import predict_files

    runs = {}
    warm = files[: max(batch_sizes)]
    predict_files(predictor, warm, method, work / f"{method}-warmup", batch_size=max(batch_sizes))
    prepared = [predictor.prepare(Image.open(p)) for p in files]
    for size in batch_sizes:
        started = time.perf_counter()
        predict_files(predictor, files, method, work / f"{method}-b{size}", batch_size=size)
        wall = time.perf_counter() - started
        started = time.perf_counter()
        for start in range(0, len(prepared), size):
            predictor.score(prepared[start : start + size], method)
        model = time.perf_counter() - started
        runs[str(size)] = {
            "ms_per_image": round(1000 * wall / len(files), 1),
            "model_ms_per_image": round(1000 * model / len(files), 1),
            "images": len(files),
        }
    return runs


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=Path("models/bundle"))
    parser.add_argument("--images", type=Path, default=Path("data/prepared"), help="folder of input images")
    parser.add_argument("--methods", nargs="+", default=None, help="default: every method of the bundle")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[16, 1])
    parser.add_argument("--count", type=int, default=32, help="images scored per method and batch size")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=None, help="JSON result (default: print only)")
    args = parser.parse_args(argv)

    from diffad.core.runtime import configure_threads
    from diffad.inference.input_files import collect_inputs
    from diffad.inference.predictor import Predictor
    from diffad.inference.serving import served_method

    configure_threads(args.threads)
    started = time.perf_counter()
    predictor = Predictor.load(args.bundle, "cpu")
    load_seconds = time.perf_counter() - started
    methods = args.methods or predictor.methods
    files = pick_inputs(collect_inputs([args.images]), args.count)
    with Image.open(files[0]) as first:
        input_size = list(first.size)
    served = served_method(predictor.methods)
    result = {
        "bench": "predict_latency",
        "bundle": str(args.bundle),
        "category": predictor.meta.get("category"),
        "resolution": predictor.meta.get("resolution"),
        "transform": predictor.meta.get("transform"),
        "input_size": input_size,
        "images": str(args.images),
        "served_method": served,
        **machine_info(args.threads),
        "library": str(Path(__import__("diffad").__file__).parent),
        "load_seconds": round(load_seconds, 2),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "goals_ms_per_image": {str(k): v for k, v in GOALS_MS.items()},
        "methods": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        for method in methods:
            result["methods"][method] = time_method(predictor, method, files, args.batch_sizes, Path(tmp))
            print(f"[latency] {method:14s} {json.dumps(result['methods'][method])}", flush=True)
            result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
            if served in result["methods"]:
                runs = result["methods"][served]
                result["meets_goals"] = {
                    str(b): runs[str(b)]["ms_per_image"] <= goal
                    for b, goal in GOALS_MS.items()
                    if str(b) in runs
                }
            text = json.dumps(result, indent=2)
            if args.out is not None:  # after every method, so an interrupted run keeps what it measured
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    sys.exit(main())
