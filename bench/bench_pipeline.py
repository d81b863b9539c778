"""Seconds and peak memory of every stage of one category's whole pipeline (all methods), JSON output.

    python bench/bench_pipeline.py --category tissue --out bench/results/pipeline_tissue.json
    python bench/bench_pipeline.py --category demo -S train_denoiser.steps=200   # the built-in demo data

The goal it measures (issue 22): one category <= 300 s on the 2-core machine, peak memory <= 4 GB.

It builds the category's data (``bench/real_data.py``; ``demo`` = the synthetic data of params.yaml),
copies the project's tracked and new files into a temporary git repo (the user's workspace, DVC
cache and experiments are untouched), writes the ``-S`` overrides into that copy's params.yaml and
runs ``dvc repro --single-item <stage>`` for each stage in dependency order, so each stage is timed
on its own. Memory per stage:

    peak_tree_rss_mib     the largest sum of RSS over the dvc process and all its descendants,
                          sampled every ``--interval`` s (the number to hold against the 4 GB goal)
    peak_process_rss_mib  the largest RSS of any single process of the tree (``ru_maxrss`` of the
                          waited-for dvc process, which the kernel carries up from its children)

Timings on a shared machine are inflated; the 1-minute load average is recorded before and after.
Every setting is read from the copy's params.yaml (resolutions included) and stored in the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_benchmark import copy_project, machine_info  # noqa: E402
from real_data import CATEGORIES, ONE_CLASS, build_category  # noqa: E402

GOAL_SECONDS = 300.0
GOAL_PEAK_MIB = 4096.0
MIB = 1024 * 1024


def _covers(out: str, dep: str) -> bool:
    """True when path ``dep`` is ``out`` or lies inside it (or ``out`` inside ``dep``)."""
    out, dep = out.rstrip("/"), dep.rstrip("/")
    return out == dep or dep.startswith(out + "/") or out.startswith(dep + "/")


def _paths(entries) -> list[str]:
    """Paths of a dvc.yaml ``deps``/``outs``/``metrics`` list (items are strings or one-key mappings)."""
    paths = []
    for entry in entries or []:
        paths += list(entry) if isinstance(entry, Mapping) else [entry]
    return [str(p) for p in paths]


def expanded_stages(dvc_yaml: Mapping) -> dict[str, Mapping]:
    """The stages of a parsed dvc.yaml, each ``foreach`` expanded to ``name@key`` as DVC names them
    (``${key}`` and ``${item.x}`` substituted; other ``${...}`` are left as they are)."""
    stages: dict[str, Mapping] = {}
    for name, spec in dvc_yaml.get("stages", {}).items():
        if "foreach" not in spec:
            stages[name] = spec
            continue
        for key, item in spec["foreach"].items():
            values = {"key": key, **{f"item.{k}": v for k, v in (item or {}).items()}}
            stages[f"{name}@{key}"] = _substitute(spec["do"], values)
    return stages


def _substitute(node, values: Mapping):
    if isinstance(node, Mapping):
        return {k: _substitute(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, values) for v in node]
    if isinstance(node, str):
        return re.sub(r"\$\{([\w.]+)\}", lambda m: str(values.get(m.group(1), m.group(0))), node)
    return node


def stage_order(dvc_yaml: Mapping) -> list[str]:
    """The stages of a parsed dvc.yaml in dependency order (a stage after every stage whose outputs it
    reads); ties keep the file's order. Raises ValueError on a cycle."""
    stages = expanded_stages(dvc_yaml)
    outs = {
        name: _paths(spec.get("outs")) + _paths(spec.get("metrics")) + _paths(spec.get("plots"))
        for name, spec in stages.items()
    }
    needs = {
        name: {
            other
            for other in stages
            if other != name
            and any(_covers(out, dep) for dep in _paths(spec.get("deps")) for out in outs[other])
        }
        for name, spec in stages.items()
    }
    order: list[str] = []
    while len(order) < len(stages):
        ready = [n for n in stages if n not in order and needs[n] <= set(order)]
        if not ready:
            raise ValueError(f"dvc.yaml: stages {sorted(set(stages) - set(order))} form a cycle")
        order.append(ready[0])
    return order


def tree_rss(pid: int) -> int:
    """Bytes resident in process ``pid`` and all its descendants now (0 once it is gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def run_measured(command: list[str], cwd: Path, env: dict, log_path: Path, interval: float) -> dict:
    """Run ``command``; its wall seconds, exit status and peak memory (see the module docstring)."""
    started = time.perf_counter()
    with log_path.open("w") as log:
        child = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        peak = 0
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, tree_rss(child.pid))
            time.sleep(interval)
    child.returncode = os.waitstatus_to_exitcode(status)
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "returncode": child.returncode,
        "peak_tree_rss_mib": round(peak / MIB, 1),
        "peak_process_rss_mib": round(usage.ru_maxrss / 1024, 1),
    }


def write_params(project: Path, overrides: list[str]) -> dict:
    """Apply ``key=value`` overrides to the copy's params.yaml, check them with the typed config, and
    return the plain params as the stages will read them."""
    from diffad.core.typed_yaml import apply_override

    path = project / "params.yaml"
    raw = yaml.safe_load(path.read_text())
    for item in overrides:
        apply_override(raw, item)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return raw


def summarize(stages: dict[str, dict]) -> dict:
    """Totals of per-stage measurements and whether they meet the issue's goals."""
    seconds = round(sum(s["seconds"] for s in stages.values()), 1)
    peak = max((s["peak_tree_rss_mib"] for s in stages.values()), default=0.0)
    return {
        "total_seconds": seconds,
        "peak_tree_rss_mib": peak,
        "peak_process_rss_mib": max((s["peak_process_rss_mib"] for s in stages.values()), default=0.0),
        "goal_seconds": GOAL_SECONDS,
        "goal_peak_mib": GOAL_PEAK_MIB,
        "meets_seconds": seconds <= GOAL_SECONDS,
        "meets_memory": peak <= GOAL_PEAK_MIB,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--category", default="tissue", choices=[*CATEGORIES, "demo"])
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[], help="param override")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (runtime.threads)")
    parser.add_argument("--seed", type=int, default=0, help="data seed (bench/real_data.py)")
    parser.add_argument("--interval", type=float, default=0.25, help="memory sampling period, s")
    parser.add_argument("--keep", type=Path, default=None, help="keep the data and project copy here")
    parser.add_argument("--out", type=Path, default=None, help="JSON result (default: print only)")
    args = parser.parse_args(argv)

    work = args.keep or Path(tempfile.mkdtemp(prefix="diffad-pipeline-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "OMP_NUM_THREADS": str(args.threads),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    overrides = [f"runtime.threads={args.threads}"]
    data_info = None
    try:
        if args.category != "demo":
            data_info = build_category(args.category, work / "data" / args.category, args.seed)
            source = "folder" if args.category in ONE_CLASS else "mvtec"
            data = work / "data" / args.category
            overrides += [f"data.source={source}", f"data.path={data}", f"data.category={args.category}"]
        project = copy_project(work / "project")
        params = write_params(project, [*overrides, *args.overrides])
        order = stage_order(yaml.safe_load((project / "dvc.yaml").read_text()))
        info, load_before = machine_info(args.threads), os.getloadavg()  # the code and time it started on
        stages: dict[str, dict] = {}
        for stage in order:
            command = [sys.executable, "-m", "dvc", "repro", "--single-item", stage]
            stages[stage] = run_measured(command, project, env, work / f"{stage}.log", args.interval)
            print(f"[pipeline] {stage:16s} {json.dumps(stages[stage])}", flush=True)
            if stages[stage]["returncode"] != 0:
                raise SystemExit(f"stage {stage} failed; see {work / f'{stage}.log'} (kept: --keep)")
        result = {
            "bench": "pipeline",
            "category": args.category,
            "data": data_info,
            "overrides": args.overrides,
            **info,
            "load_average": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "params": params,
            "stages": stages,
            **summarize(stages),
        }
        text = json.dumps(result, indent=2)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text + "\n")
        headline = ("total_seconds", "peak_tree_rss_mib", "meets_seconds", "meets_memory")
        print(json.dumps({k: result[k] for k in headline}))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
