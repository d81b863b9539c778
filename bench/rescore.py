"""Screen evaluation-only levers on a kept benchmark run: re-run `evaluate` with overrides, no retraining.

    .venv/bin/python bench/real_benchmark.py --keep /tmp/bench-before          # trains and keeps
    .venv/bin/python bench/rescore.py /tmp/bench-before -S msma_flow.topk=1 \\
        --out bench/results/ablation/flow_top1.json

The `evaluate` stage of *this* checkout runs in each kept project copy (its data, score cache and
models), writing to ``<copy>/rescore-<tag>/``; seconds are the kept run's, the metrics are new.
Only for levers that act in `evaluate` (image-score pooling, fusion, the DDIM detector settings).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_benchmark import ROOT, markdown, measured  # noqa: E402


def rescore(project: Path, overrides: list[str], tag: str) -> dict:
    out = project / f"rescore-{tag}"
    command = [sys.executable, str(ROOT / "stages" / "evaluate.py"), "--params", "params.yaml"]
    for item in overrides:
        command += ["-S", item]
    command += ["--reports", str(out / "reports"), "--bundle", str(out / "bundle")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with (out.parent / f"rescore-{tag}.log").open("w") as log:
        subprocess.run(command, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
    return measured(out / "reports")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kept", type=Path, help="the --keep folder of a real_benchmark.py run")
    parser.add_argument("--base", type=Path, default=None, help="its JSON (default: <kept>/result.json)")
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    base = json.loads((args.base or args.kept / "result.json").read_text())
    tag = args.out.stem
    result = {**base, "overrides": [*base["overrides"], *args.overrides], "rescored_from": str(args.kept)}
    for name, cat in base["categories"].items():
        metrics = rescore(args.kept / f"project-{name}", ["runtime.threads=1", *args.overrides], tag)
        old = cat["methods"]
        fallback = max(m["seconds"] for m in old.values())  # a new method: the whole pipeline
        cat["methods"] = {
            m: {
                "image_auroc": v.get("image_auroc"),
                "pixel_auroc": v.get("pixel_auroc"),
                "aupro": v.get("aupro"),
                "seconds": old.get(m, {}).get("seconds", fallback),
                "ms_per_image": v.get("ms_per_image"),
            }
            for m, v in metrics.items()
        }
        print(name, {m: (v["image_auroc"], v["pixel_auroc"]) for m, v in cat["methods"].items()}, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    args.out.with_suffix(".md").write_text(markdown(result))


if __name__ == "__main__":
    main()
