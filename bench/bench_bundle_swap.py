"""Swap-while-predicting stress: bundles published over and over while a reader loads and scores.

A writer process publishes ``--iterations`` bundle versions into one bundle folder through the
writer `evaluate` uses (:func:`diffad.core.files.publish_version`, pruning as it goes), alternating
two real fitted models A and B (weights hard-linked from two templates, each manifest numbered so
every version is new). Meanwhile this process loads the bundle with
:class:`diffad.inference.predict.Predictor` again and again; each load is checked: the bytes its
models will read (the files it holds open) and its threshold must be those of the model its
manifest names, and every ``--score-every``-th load also scores a fixed batch, which must give
that model's scores exactly. A failed check ("mismatch") or a failed load (no bundle, a mixed
one) is counted. Bounded and local: stops by itself after the writer's last version, in a
temporary folder.

    PYTHONPATH=src:. python bench/bench_bundle_swap.py --iterations 1000 --out bench/results/bundle_swap.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def _writer(bundle: str, templates: list[str], iterations: int, pause_s: float) -> None:
    from diffad.artifacts.layout import MANIFEST
    from diffad.core.files import publish_version
    from diffad.inference.bundle import manifest_id

    manifests = [json.loads((Path(t) / MANIFEST).read_text()) for t in templates]
    for i in range(iterations):
        which = i % 2

        def build(folder: Path, which: int = which, i: int = i) -> str:
            for name in manifests[which]["files"]:
                os.link(Path(templates[which]) / name, folder / name)
            text = json.dumps({**manifests[which], "stress": {"model": which, "version": i}}, indent=2)
            (folder / MANIFEST).write_text(text)
            return manifest_id(text.encode())

        publish_version(Path(bundle), build)
        time.sleep(pause_s)


def run(iterations: int, pause_s: float, work: Path, score_every: int = 10) -> dict:
    sys.path.insert(0, str(ROOT))
    from diffad.core.files import sha256_of
    from diffad.inference.predictor import Predictor
    from tests.faults.bundles import fitted_models, images, publish

    torch.set_num_threads(1)
    templates = []
    for which in (0, 1):
        models = fitted_models(work / f"model-{which}", seed=which + 1)
        templates.append(publish(models, work / f"template-{which}", shift=0.25 * which))
    expected = []
    x = images(7)
    for template in templates:
        p = Predictor.load(template, "cpu")
        scores = p.models.score(x, ("padim",))["padim"].scores
        expected.append((scores, p.thresholds["padim"].threshold, sha256_of(template / "padim.safetensors")))
    bundle = work / "bundle"
    shutil.copytree(templates[0], bundle / templates[0].name)
    (bundle / "CURRENT").write_text(templates[0].name + "\n")

    context = multiprocessing.get_context("spawn")
    writer = context.Process(
        target=_writer, args=(str(bundle), [str(t) for t in templates], iterations, pause_s)
    )
    checks = scored = mismatches = errors = 0
    seen_versions: set[int] = set()
    examples: list[str] = []
    start = time.perf_counter()
    writer.start()
    try:
        while writer.is_alive() or checks == 0:
            try:
                p = Predictor.load(bundle, "cpu")
                held = sha256_of(p.models.file("padim.safetensors"))
                scores = p.models.score(x, ("padim",))["padim"].scores if checks % score_every == 0 else None
            except Exception as exc:  # noqa: BLE001 - every failure to load is a finding
                errors += 1
                examples.append(f"load: {exc}"[:200])
                continue
            which = p.meta.get("stress", {"model": 0})["model"]
            seen_versions.add(p.meta.get("stress", {"version": -1})["version"])
            want_scores, want_threshold, want_sha = expected[which]
            checks += 1
            wrong = held != want_sha or p.thresholds["padim"].threshold != want_threshold
            if scores is not None:
                scored += 1
                wrong = wrong or not np.array_equal(scores, want_scores)
            if wrong:
                mismatches += 1
                examples.append(
                    f"version {p.meta.get('stress')}: weights, threshold or scores of the other model"
                )
    finally:
        writer.join(600)
    seconds = time.perf_counter() - start
    left = sorted(q.name for q in bundle.iterdir())
    return {
        "iterations": iterations,
        "writer_exit_code": writer.exitcode,
        "checks": checks,
        "checks_that_scored": scored,
        "distinct_versions_read": len(seen_versions),
        "mismatches": mismatches,
        "load_errors": errors,
        "examples": examples[:5],
        "seconds": round(seconds, 1),
        "bundle_folder_after": left,
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1000, help="bundle versions published")
    parser.add_argument("--pause-ms", type=float, default=2.0, help="writer's pause between versions")
    parser.add_argument("--score-every", type=int, default=10, help="score a batch every this many loads")
    parser.add_argument("--out", type=Path, default=None, help="JSON result (default: print only)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bundle-swap-") as work:
        result = run(args.iterations, args.pause_ms / 1000, Path(work), args.score_every)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
