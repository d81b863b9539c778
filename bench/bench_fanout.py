"""Fan-out speed-up: ``retrain-all`` over 4 categories on 1 GPU-pool worker vs on 2, JSON output.

    python bench/bench_fanout.py --out bench/results/fanout.json        # as root: PostgreSQL server

The goal it measures (issue 24): 2 workers finish 4 categories in at most 0.6x the time of 1.

For each worker count it builds everything afresh, as docs/orchestration.md does, so that no run
reuses another's DVC cache: a copy of the project (tracked and new files of this checkout, same
commit) with the small settings of the tiny test pipeline (``tests/integration/conftest.TINY``:
every stage does its real work, at 64 px), the work pool ``gpu`` with its ``cpu`` queue, ``prefect
deploy --all``, the orchestrator worker on the ``cpu`` queue and N workers on the ``default`` queue
with ``--limit 1`` (one GPU job per worker; ``CUDA_VISIBLE_DEVICES`` = the worker's index). It
then times ``prefect deployment run retrain-all/all-categories --watch`` from submission to the
fan-out's final state, and reads every category's run (start, end) from the server.

The 4 categories are MVTec-layout folders of the synthetic demo (fabric and washer, each with two
seeds). The Prefect server runs on PostgreSQL when this is root with Debian's ``postgresql``
(``tests/services.py``, as the tests start it), else on SQLite. Workers and stages share this
machine's cores: with ``runtime.threads`` = 1 two workers can use two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from real_benchmark import copy_project, machine_info  # noqa: E402

from tests.flows.conftest import start_prefect_server, stop_process  # noqa: E402
from tests.integration.conftest import TINY, merge  # noqa: E402

PREFECT = [sys.executable, "-m", "prefect"]
CATEGORIES = [("fabric", 0), ("washer", 0), ("fabric", 1), ("washer", 1)]  # (demo category, seed)


def write_categories(root: Path) -> list[dict]:
    """The 4 raw categories in the MVTec AD layout; the retrain-all parameter that names them."""
    from diffad.config import params_from_dict
    from diffad.data.synthetic import write_demo

    convert = params_from_dict(merge({}, TINY)).convert_dataset
    specs = []
    for category, seed in CATEGORIES:
        name = f"{category}{seed}"
        write_demo(category, convert, seed, root / name)
        specs.append({"name": name, "source": "mvtec", "path": str(root / name)})
    return specs


def small_project(dest: Path) -> Path:
    project = copy_project(dest)
    params = merge(yaml.safe_load((project / "params.yaml").read_text()), TINY)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return project


class Pool:
    """A Prefect server (and its database) with the project's deployments, and the workers."""

    def __init__(self, base: Path) -> None:
        self.base, self.processes, self.database = base, [], "sqlite"
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(base / "prefect-home"),
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "DVC_NO_ANALYTICS": "1",
            "GX_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        self.pg = None
        server_env = dict(self.env)
        if os.geteuid() == 0 and shutil.which("runuser"):
            from tests.services import PG_BIN, start_postgres

            if (PG_BIN / "initdb").exists():
                self.pg = start_postgres()
                server_env["PREFECT_API_DATABASE_CONNECTION_URL"] = self.pg.url
                self.database = "postgresql"
        server, url = start_prefect_server(base / "server.log", env=server_env)
        self.processes.append(server)
        self.env["PREFECT_API_URL"] = url

    def run(self, *args: str, cwd: Path, timeout: float = 600) -> str:
        done = subprocess.run(
            [*PREFECT, *args], cwd=cwd, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise RuntimeError(f"prefect {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done.stdout

    def start_worker(self, project: Path, queue: str, name: str, extra: dict[str, str]) -> subprocess.Popen:
        args = ["worker", "start", "--pool", "gpu", "--work-queue", queue, "--name", name]
        args += ["--limit", "1"] if queue == "default" else []
        log = (self.base / f"{name}.log").open("w")
        env = {**self.env, "DIFFAD_PROJECT_DIR": str(project), **extra}
        proc = subprocess.Popen([*PREFECT, *args], cwd=project, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.processes.append(proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self.processes):
            stop_process(proc)
        if self.pg is not None:
            self.pg.stop()


def category_runs(env: dict[str, str], fan_out_id: str) -> dict[str, dict]:
    """Each category's retrain run queued by the fan-out: state, start, end, seconds."""
    code = f"""
import json
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as client:
    parent = client.read_flow_run({fan_out_id!r})
    runs = client.read_flow_runs()
print(json.dumps([[r.name, r.state_name, r.start_time and r.start_time.timestamp(),
                   r.end_time and r.end_time.timestamp()]
                  for r in runs if r.name.startswith("retrain-") and r.created >= parent.created]))
"""
    rows = json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                     text=True, check=True).stdout)  # fmt: skip
    return {
        name: {"state": state, "start": start, "end": end, "seconds": round(end - start, 1)}
        for name, state, start, end in rows
        if start and end
    }


def fan_out(workers: int, base: Path, specs: list[dict]) -> dict:
    base.mkdir(parents=True)
    project = small_project(base / "project")
    pool = Pool(base)
    try:
        pool.run("work-pool", "create", "gpu", "--type", "process", cwd=project)
        pool.run("work-queue", "create", "cpu", "--pool", "gpu", cwd=project)
        pool.run("--no-prompt", "deploy", "--all", cwd=project)
        pool.start_worker(project, "cpu", "orchestrator", {"CUDA_VISIBLE_DEVICES": ""})
        for index in range(workers):
            pool.start_worker(project, "default", f"gpu-{index}", {"CUDA_VISIBLE_DEVICES": str(index)})
        time.sleep(5)  # the workers' first poll
        params = {
            "categories": specs,
            "options": {"registry": "", "remote": "", "retries": 0},
            "poll_s": 1,
        }
        start = time.perf_counter()
        out = pool.run("deployment", "run", "retrain-all/all-categories", "--params", json.dumps(params),
                       "--watch", "--watch-interval", "1", cwd=project, timeout=3600)  # fmt: skip
        seconds = time.perf_counter() - start
        fan_out_id = next(line.split()[-1] for line in out.splitlines() if "UUID" in line)
        runs = category_runs(pool.env, fan_out_id)
        final = next((line for line in reversed(out.splitlines()) if "state" in line.lower()), "")
        return {"workers": workers, "seconds": round(seconds, 1), "runs": runs, "final": final.strip(),
                "database": pool.database}  # fmt: skip
    finally:
        pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/fanout.json")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="diffad-fanout-"))
    try:
        specs = write_categories(base / "raw")
        load_before = os.getloadavg()[0]
        results = [fan_out(n, base / f"workers{n}", specs) for n in (1, 2)]
        one, two = results
        report = {
            **machine_info(TINY["runtime"]["threads"]),
            "settings": TINY,
            "categories": [s["name"] for s in specs],
            "load_1min_before": round(load_before, 2),
            "load_1min_after": round(os.getloadavg()[0], 2),
            "results": results,
            "ratio_2_vs_1": round(two["seconds"] / one["seconds"], 3),
            "goal_ratio_at_most": 0.6,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps({k: report[k] for k in ("ratio_2_vs_1", "load_1min_before", "load_1min_after")}))
        for result in results:
            print(result["workers"], "worker(s):", result["seconds"], "s", result["final"])
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
