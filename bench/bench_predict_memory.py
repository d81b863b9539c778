"""Peak memory (RSS) of `diffad predict` for 1, 100 and 1000 inputs: it must not grow with N.

Each case runs `diffad predict` in a fresh process on N generated PNGs and reads that process's
peak resident set size (``ru_maxrss`` of the waited-for child, so nothing else is counted). The
images are ``--side`` px (smooth, so the files stay small while each decodes to side^2 x 3 bytes);
``--huge`` adds a case of 4 PNGs of 12000 x 12000 px (17 KB files, 432 MB each decoded), the
probe that took 5.2 GB before predict streamed its inputs.

    python bench/bench_predict_memory.py --bundle models/bundle --method padim \\
        --counts 1,100,1000 --huge --out bench/results/predict_memory.json

Run it against another checkout's library with ``PYTHONPATH=<other>/src`` to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_inputs(folder: Path, count: int, side: int) -> list[Path]:
    """``count`` distinct smooth RGB PNGs of ``side`` x ``side`` in ``folder/<i % 10>/``."""
    rng = np.random.default_rng(0)
    files = []
    for i in range(count):
        coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
        path = folder / f"{i % 10}" / f"{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        coarse.resize((side, side), Image.Resampling.BILINEAR).save(path)
        files.append(path)
    return files


def make_huge(folder: Path, count: int = 4, side: int = 12_000) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    image = Image.new("L", (side, side), 128)
    files = [folder / f"huge{i}.png" for i in range(count)]
    for path in files:
        image.save(path, optimize=False)
    return files


def peak_rss_of_predict(inputs: list[Path], args: argparse.Namespace, out: Path) -> dict:
    """Run `diffad predict` on ``inputs`` in a child process; its peak RSS (MiB) and wall time."""
    cmd = [sys.executable, "-m", "diffad.cli", "predict", *map(str, inputs), "--bundle", str(args.bundle)]
    cmd += ["--method", args.method, "--out", str(out), "--threads", str(args.threads), "--device", "cpu"]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    stderr = child.stderr.read()
    child.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"predict failed:\n{stderr}")
    return {"peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=Path("models/bundle"))
    parser.add_argument("--method", default="padim")
    parser.add_argument("--counts", default="1,100,1000")
    parser.add_argument("--side", type=int, default=512, help="input image side, px")
    parser.add_argument("--huge", action="store_true", help="also 4 inputs of 12000 x 12000 px")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="JSON result file")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        cases = [(f"{n} x {args.side}px", int(n), args.side) for n in args.counts.split(",")]
        if args.huge:
            cases.append(("4 x 12000px", 4, 12_000))
        for label, count, side in cases:
            folder = Path(tmp) / f"in-{count}-{side}"
            inputs = make_huge(folder) if side == 12_000 else make_inputs(folder, count, side)
            run = {"case": label, "inputs": count, "side": side}
            run.update(peak_rss_of_predict([folder], args, Path(tmp) / f"out-{count}-{side}"))
            runs.append(run)
            print(json.dumps(run), flush=True)
            shutil.rmtree(folder)
            del inputs
    result = {
        "bench": "predict_memory",
        "python": sys.version.split()[0],
        "library": str(Path(__import__("diffad").__file__).parent),
        "self_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "config": {k: str(v) for k, v in vars(args).items() if k != "out"},
        "runs": runs,
    }
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
