"""The real-photo benchmark: every category of bench/real_data.py through the whole pipeline.

One command (from the project root)::

    .venv/bin/python bench/real_benchmark.py            # all categories, today's params.yaml
    .venv/bin/python bench/real_benchmark.py --categories tissue moon -S train_denoiser.steps=800 \\
        --out bench/results/ablation/steps800.json      # a lever, on a subset

For each category it builds the data (deterministic), copies the project's tracked and new files
into a temporary folder (a fresh git repo, so the user's workspace, DVC cache and experiments are
untouched), runs ``dvc exp run -S data.source=... -S data.path=... -S data.category=...`` there
with the params of ``params.yaml`` plus any ``-S`` overrides, and reads ``reports/metrics.json``.

Seconds per method = the stages it needs (convert_dataset; train_denoiser, score_norms, fit@msma_gmm and/or
fit@msma_flow for the diffusion methods; the method's own fit for PatchCore/PaDiM) + its inference
time on the test images (``ms_per_image`` × test images). Stage times come from the mtimes of each
stage's last output; they are inflated when the machine is shared, so the load average is
recorded beside them.

``--peer-python PY``: after each category, anomalib's PatchCore and PaDiM (``bench/peer_anomalib.py``,
run by interpreter ``PY`` of a venv with the ``peer`` extra) on the same data folder, with the same
``-S`` overrides; their rows (``anomalib_patchcore``, ``anomalib_padim``) join the category's methods.

Output: JSON (``--out``) and a markdown table next to it (same name, ``.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_data import CATEGORIES, ONE_CLASS, build_category  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DIFFUSION_STAGES = {
    "msma_gmm": ("train_denoiser", "score_norms", "fit@msma_gmm"),
    "msma_flow": ("train_denoiser", "score_norms", "fit@msma_flow"),
    "ddim": ("train_denoiser",),
    "ensemble": ("train_denoiser", "score_norms", "fit@msma_gmm", "fit@msma_flow"),
    "fused": (
        "train_denoiser",
        "score_norms",
        "fit@msma_gmm",
        "fit@msma_flow",
        "fit@msma_features",
        "fit@patchcore",
    ),
}
FIT_LINE = re.compile(r"(\w+) fitted on \d+ images in ([\d.]+) s")


def copy_project(dest: Path) -> Path:
    """The project's tracked and untracked-but-not-ignored files in a fresh git repo at ``dest``."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        text=True,
        capture_output=True,
        check=True,
    ).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "benchmark copy"], cwd=dest, check=True)
    return dest


# The file each stage writes last; a stage's seconds = its marker's mtime minus the previous
# finished stage's (DVC prints its "Running stage" lines only at the end when piped, so the output
# cannot be timed line by line).
STAGE_MARKERS = {
    "convert_dataset": "reports/validation/validation.json",
    "train_denoiser": "models/denoiser/loss.csv",
    "score_norms": "data/score_norms",
    **{
        f"fit@{m}": f"models/methods/{m}"
        for m in ("msma_gmm", "msma_flow", "msma_features", "patchcore", "padim")
    },
    "evaluate": "reports/summary.json",
}


def _newest_mtime(path: Path) -> float:
    if path.is_dir():
        return max((p.stat().st_mtime for p in path.rglob("*") if p.is_file()), default=path.stat().st_mtime)
    return path.stat().st_mtime


def stage_seconds(project: Path, started: float) -> dict[str, float]:
    """Wall seconds per stage from the mtimes of the stages' last outputs (``started``: epoch s)."""
    ends = sorted(
        (_newest_mtime(project / marker), stage)
        for stage, marker in STAGE_MARKERS.items()
        if (project / marker).exists()
    )
    seconds, previous = {}, started
    for end, stage in ends:
        seconds[stage] = max(end - previous, 0.0)
        previous = end
    return seconds


def run_pipeline(project: Path, overrides: list[str], log_path: Path) -> dict:
    """``dvc exp run`` with ``overrides``; total and per-stage wall seconds."""
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    command = [sys.executable, "-m", "dvc", "exp", "run"]
    for item in overrides:
        command += ["-S", item]
    started = time.time()
    with log_path.open("w") as log:
        returncode = subprocess.run(
            command, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT
        ).returncode
    total = time.time() - started
    if returncode != 0:
        raise RuntimeError(f"dvc exp run failed ({returncode}); see {log_path}")
    fits = {m: float(s) for m, s in FIT_LINE.findall(log_path.read_text())}
    return {"total": total, "stages": stage_seconds(project, started), "fits": fits}


def measured(reports: Path) -> dict[str, dict[str, float | None]]:
    """``{method: {metric: value}}`` of an evaluate run's reports, ``ms_per_image`` included (it
    lives in ``timing.json``, beside ``metrics.json``)."""
    from diffad.artifacts.layout import ReportsDir
    from diffad.artifacts.records import read_metrics, read_timing

    folder = ReportsDir(reports)
    timing = read_timing(folder)
    return {m: {**v, **timing.get(m, {})} for m, v in read_metrics(folder.metrics).items()}


def method_seconds(method: str, timing: dict, ms_per_image: float, n_test: int) -> float:
    """Pipeline seconds a method needs on its own: its stages + its inference on the test set."""
    stages = timing["stages"]
    seconds = stages.get("convert_dataset", 0.0) + ms_per_image * n_test / 1000
    if method in ("patchcore", "padim", "msma_features"):
        fits = timing["fits"]
        return seconds + fits.get(method, stages.get(f"fit@{method}", 0.0))
    return seconds + sum(stages.get(s, 0.0) for s in DIFFUSION_STAGES.get(method, ()))


def run_category(name: str, work: Path, overrides: list[str], seed: int, retime: bool = False) -> dict:
    """Build, copy, run and read one category. ``retime``: re-read a kept run in ``work`` instead."""
    data, project, log_path = work / "data" / name, work / f"project-{name}", work / f"{name}.log"
    if retime:
        info = json.loads((work / "data" / f"{name}.json").read_text())
        first_commit = subprocess.run(
            ["git", "log", "--reverse", "--format=%ct"],
            cwd=project,
            text=True,
            capture_output=True,
            check=True,
        ).stdout.split()[0]
        started = float(first_commit)
        timing = {
            "total": _newest_mtime(project / STAGE_MARKERS["evaluate"]) - started,
            "stages": stage_seconds(project, started),
            "fits": {m: float(s) for m, s in FIT_LINE.findall(log_path.read_text())},
        }
        loads = (None, None)
    else:
        info = build_category(name, data, seed)
        copy_project(project)
        source = "folder" if name in ONE_CLASS else "mvtec"
        settings = [f"data.source={source}", f"data.path={data}", f"data.category={name}", *overrides]
        load_before = os.getloadavg()
        timing = run_pipeline(project, settings, log_path)
        loads = (load_before, os.getloadavg())
    metrics = measured(project / "reports")
    summary = json.loads((project / "reports" / "summary.json").read_text())
    n_test = summary["n_test"] + summary["n_unknown"]
    methods = {}
    for method, m in metrics.items():
        methods[method] = {
            "image_auroc": m.get("image_auroc"),
            "pixel_auroc": m.get("pixel_auroc"),
            "aupro": m.get("aupro"),
            "border_peak_share": m.get("border_peak_share"),
            "seconds": round(method_seconds(method, timing, m.get("ms_per_image") or 0.0, n_test), 1),
            "ms_per_image": m.get("ms_per_image"),
        }
    return {
        "data": info,
        "has_masks": summary["has_masks"],
        "methods": methods,
        "pipeline_seconds": round(timing["total"], 1),
        "stage_seconds": {k: round(v, 1) for k, v in timing["stages"].items()},
        "fit_seconds": timing["fits"],
        "load_average": None if loads[0] is None else [round(x, 2) for x in loads[0]],
        "load_average_after": None if loads[1] is None else [round(x, 2) for x in loads[1]],
    }


def run_peer(name: str, work: Path, args) -> dict:
    """anomalib's rows for category ``name`` (data built in ``work/data``), run by ``args.peer_python``."""
    out = work / f"peer-{name}.json"
    command = [str(args.peer_python), str(ROOT / "bench" / "peer_anomalib.py"), "--categories", name]
    command += ["--data", str(work / "data"), "--out", str(out), "--threads", str(args.threads)]
    command += ["--seed", str(args.seed)]
    for item in args.overrides:
        command += ["-S", item]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    env["OMP_NUM_THREADS"] = str(args.threads)
    returncode = subprocess.run(command, env=env).returncode
    if returncode != 0:
        raise RuntimeError(f"peer run failed ({returncode}): {' '.join(command)}")
    peer = json.loads(out.read_text())
    return {"meta": {k: v for k, v in peer.items() if k != "categories"}, **peer["categories"][name]}


def machine_info(threads: int) -> dict:
    """Where and on what code a bench ran: threads, cores, platform, start time (UTC), git commit."""
    return {
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "machine": platform.platform(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, text=True, capture_output=True
        ).stdout.strip(),
    }


def write_result(out: Path, result: dict, table: str) -> None:
    """``out`` (JSON) and the markdown ``table`` beside it (``.md``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(table)


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def markdown(result: dict) -> str:
    """Per category: method rows with image / pixel AUROC, AUPRO, seconds; best diffusion vs best baseline."""
    lines = [f"Overrides: {' '.join(result['overrides']) or '(params.yaml defaults)'}", ""]
    header = "| category | method | image AUROC | pixel AUROC | AUPRO | seconds |"
    lines += [header, "|---|---|---|---|---|---|"]
    for name, cat in result["categories"].items():
        for method, m in cat["methods"].items():
            lines.append(
                f"| {name} | `{method}` | {_fmt(m['image_auroc'])} | {_fmt(m['pixel_auroc'])} | "
                f"{_fmt(m['aupro'])} | {m['seconds']:.0f} |"
            )
    lines += ["", "| category | pipeline s | load avg (1 min) before → after |", "|---|---|---|"]
    for name, cat in result["categories"].items():
        load = (
            "n/a"
            if cat["load_average"] is None
            else f"{cat['load_average'][0]} → {cat['load_average_after'][0]}"
        )
        lines.append(f"| {name} | {cat['pipeline_seconds']:.0f} | {load} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--categories", nargs="+", default=list(CATEGORIES), choices=CATEGORIES)
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[], help="param override")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "real_benchmark.json")
    parser.add_argument("--seed", type=int, default=0, help="data seed (the pipeline seed is params.yaml's)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (runtime.threads)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the data and project copies here")
    parser.add_argument("--retime", action="store_true", help="re-read the runs kept in --keep, run nothing")
    parser.add_argument(
        "--peer-python",
        type=Path,
        default=None,
        help="interpreter of a venv with the peer extra: also run anomalib (bench/peer_anomalib.py)",
    )
    args = parser.parse_args(argv)
    overrides = [f"runtime.threads={args.threads}", *args.overrides]

    work = args.keep or Path(tempfile.mkdtemp(prefix="diffad-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "real-photo categories (bench/real_data.py)",
        "overrides": args.overrides,
        **machine_info(args.threads),
        "categories": {},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        for name in args.categories:
            print(f"[bench] {name} ...", flush=True)
            result["categories"][name] = run_category(name, work, overrides, args.seed, args.retime)
            cat = result["categories"][name]
            if args.peer_python is not None:
                peer = run_peer(name, work, args)
                cat["methods"].update(peer["methods"])
                result["peer"] = peer["meta"]
            for method, m in cat["methods"].items():
                print(
                    f"[bench] {name:8s} {method:10s} image {_fmt(m['image_auroc'])}"
                    f" pixel {_fmt(m['pixel_auroc'])} aupro {_fmt(m['aupro'])} {m['seconds']:.0f} s",
                    flush=True,
                )
            # written after every category, so an interrupted run keeps what it measured
            write_result(args.out, result, markdown(result))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"[bench] wrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
