"""Fixtures for the flow tests: a tiny self-contained DVC project and a real Prefect server.

The tiny project has the shape of the real pipeline in three fast stages, so the flows are tested
without training anything:

    convert_dataset  data/raw/*.csv -> data/prepared/data.csv + reports/validation/validation.json
                     (fails with exit 2 when a value is not a number in [0, 1])
    train            -> models/model.json; exits 75 once when $TINY_FAIL_ONCE names a missing file;
                     appends $TINY_HOST to $TINY_RUN_LOG
    evaluate         -> reports/metrics.json (image_auroc = params train.quality), heatmaps, bundle;
                     first runs $TINY_EVALUATE_HOOK (fault injection)

``dvc.yaml`` lists ``train`` first, so only DVC's graph gives the right order.
Prefect never touches ~/.prefect: PREFECT_HOME is a temporary folder, telemetry is off.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `flows` is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

_HOME = tempfile.mkdtemp(prefix="diffad-prefect-home-")
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
os.environ.pop("PREFECT_API_URL", None)
os.environ.update(
    PREFECT_HOME=_HOME,
    PREFECT_PROFILES_PATH=str(Path(_HOME) / "profiles.toml"),
    PREFECT_SERVER_ANALYTICS_ENABLED="false",
    PREFECT_SERVER_UI_ENABLED="false",
    DO_NOT_TRACK="1",
    DVC_NO_ANALYTICS="1",
    GX_ANALYTICS_ENABLED="false",
    PREFECT_LOGGING_LEVEL="WARNING",
)

CONVERT = """\
import csv, pathlib, shutil, sys, yaml
from diffad.artifacts.layout import ValidationDir
from diffad.artifacts.records import CheckResult, ValidationResult, write_validation
params = yaml.safe_load(open("params.yaml"))
files = sorted(pathlib.Path(params["data"]["path"]).glob("*.csv"))
rows = [(f"{f.name}:{i + 2}", row) for f in files for i, row in enumerate(csv.DictReader(open(f)))]
def ok(text):
    try:
        return 0.0 <= float(text) <= 1.0
    except ValueError:
        return False
bad = [{"path": where, "value": row["value"]} for where, row in rows if not ok(row["value"])]
checks = [
    CheckResult("value_range", "value is a number in [0, 1]", not bad, len(bad), len(bad), bad),
    CheckResult("row_count", "at least 2 rows", len(rows) >= 2, len(rows)),
]
report = ValidationResult(success=all(c.success for c in checks), rows=len(rows), manifest="data/raw",
                          checks=sorted(checks, key=lambda c: c.success))
write_validation(ValidationDir(pathlib.Path("reports/validation")), report)
shutil.rmtree("data/prepared", ignore_errors=True)
pathlib.Path("data/prepared").mkdir(parents=True)
with open("data/prepared/data.csv", "w") as out:
    out.write("value\\n" + "".join(row["value"] + "\\n" for _, row in rows))
if not report.success:
    print("error: data validation failed", file=sys.stderr)
    sys.exit(2)
"""

TRAIN = """\
import json, os, pathlib, sys, yaml
if os.environ.get("TINY_RUN_LOG"):  # which host really trained (not restored from the run-cache)
    with open(os.environ["TINY_RUN_LOG"], "a") as log:
        log.write(os.environ.get("TINY_HOST", "?") + "\\n")
marker = os.environ.get("TINY_FAIL_ONCE")
if marker and not pathlib.Path(marker).exists():
    pathlib.Path(marker).write_text("failed once")
    print("simulated pre-emption", file=sys.stderr)
    sys.exit(75)
params = yaml.safe_load(open("params.yaml"))
values = [float(v) for v in open("data/prepared/data.csv").read().split()[1:]]
pathlib.Path("models").mkdir(exist_ok=True)
model = {"mean": sum(values) / len(values), "quality": params["train"]["quality"]}
json.dump(model, open("models/model.json", "w"))
"""

EVALUATE = """\
import json, os, pathlib, subprocess
if os.environ.get("TINY_EVALUATE_HOOK"):  # a fault injected after the last stage's pull, e.g. the remote dies
    subprocess.run(os.environ["TINY_EVALUATE_HOOK"], shell=True, check=True)
from diffad.artifacts.records import write_metrics
model = json.load(open("models/model.json"))
for d in ("reports/heatmaps/defect", "models/bundle"):
    pathlib.Path(d).mkdir(parents=True, exist_ok=True)
pathlib.Path("reports/heatmaps/defect/000.png").write_bytes(b"png" + str(model["mean"]).encode())
pathlib.Path("models/bundle/model.json").write_text(json.dumps(model))
metrics = {"tiny": {"image_auroc": model["quality"], "pixel_auroc": round(0.5 + model["mean"] / 2, 6),
                    "aupro": None, "ms_per_image": 1.0}}
write_metrics(pathlib.Path("reports/metrics.json"), metrics)
"""

DVC_YAML = """\
stages:
  train:
    cmd: python stages/train.py
    deps: [stages/train.py, data/prepared]
    params: [train]
    outs: [models/model.json]
  convert_dataset:
    cmd: python stages/convert.py
    deps: [stages/convert.py, "${data.path}"]
    params: [data]
    outs:
      - data/prepared
      - reports/validation/validation.json:
          cache: false
    metrics:
      - reports/validation/summary.json:
          cache: false
  evaluate:
    cmd: python stages/evaluate.py
    deps: [stages/evaluate.py, models/model.json]
    outs: [reports/heatmaps, models/bundle]
    metrics:
      - reports/metrics.json:
          cache: false
"""

PARAMS = "data:\n  category: alpha\n  source: csv\n  path: data/raw\ntrain:\n  quality: 0.9\n"
GOOD_ROWS = "value\n0.2\n0.4\n0.6\n"


def _run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)


def build_tiny_project(path: Path, remote: Path) -> Path:
    """Create the tiny git + DVC project at ``path`` with a local-directory DVC remote ``shared``."""
    (path / "stages").mkdir(parents=True)
    for name, text in {"convert.py": CONVERT, "train.py": TRAIN, "evaluate.py": EVALUATE}.items():
        (path / "stages" / name).write_text(text)
    (path / "dvc.yaml").write_text(DVC_YAML)
    (path / "params.yaml").write_text(PARAMS)
    (path / ".gitignore").write_text("/data/prepared\n/models/\n/reports/\n/runs/\n")
    for folder in ("data/raw", "data/raw_beta"):
        (path / folder).mkdir(parents=True)
        (path / folder / "part1.csv").write_text(GOOD_ROWS)
    _run(["git", "init", "-q"], path)
    _run([sys.executable, "-m", "dvc", "init", "-q"], path)
    write_dvc_config(path, remote)
    return path


def write_dvc_config(project: Path, remote: Path) -> None:
    """Analytics off and a local-directory remote ``shared`` (what `dvc config` / `dvc remote add` write)."""
    (project / ".dvc" / "config").write_text(
        f"[core]\n    analytics = false\n['remote \"shared\"']\n    url = {remote}\n"
    )


@pytest.fixture(scope="session")
def tiny_template(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("tiny-template")
    return build_tiny_project(base / "project", base / "remote")


@pytest.fixture
def tiny_project(tiny_template, tmp_path) -> Path:
    """A fresh copy of the tiny project (its DVC remote points at ``tmp_path / 'remote'``)."""
    project = tmp_path / "project"
    shutil.copytree(tiny_template, project, symlinks=True)
    write_dvc_config(project, tmp_path / "remote")
    return project


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGINT (Prefect workers ignore a lone SIGTERM for a while), then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                continue
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(name="stop_process")
def stop_process_fixture():
    """:func:`stop_process` for tests that start their own workers."""
    return stop_process


def _healthy(url: str, prefix: tuple[str, ...] = ()) -> bool:
    """True once ``url`` answers 200 (asked from inside ``prefix``'s network namespace, if any)."""
    if prefix:
        probe = f"import urllib.request; urllib.request.urlopen({url!r}, timeout=2)"
        return subprocess.run([*prefix, sys.executable, "-c", probe], capture_output=True).returncode == 0
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def start_prefect_server(
    log: Path, env: dict[str, str] | None = None, host: str = "127.0.0.1", prefix: tuple[str, ...] = ()
) -> tuple[subprocess.Popen, str]:
    """``prefect server start`` at a free port of ``host``; returns the process and its API URL once
    ``/api/health`` answers. ``env``: e.g. ``PREFECT_API_DATABASE_CONNECTION_URL`` (PostgreSQL)."""
    port = _free_port() if host == "127.0.0.1" else 4200
    url = f"http://{host}:{port}/api"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "prefect", "server", "start", "--host", host, f"--port={port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",  # cron runs appear at once
                **(env or {}),
            },
        )
    deadline = time.monotonic() + 180  # migrations on a fresh PostgreSQL database, on a loaded machine
    while True:
        if _healthy(f"{url}/health", prefix):
            return proc, url
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            raise RuntimeError(f"prefect server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5 if not prefix else 1.0)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """A Prefect server on 127.0.0.1 at a free port; PREFECT_API_URL points at it during the tests."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    proc, url = start_prefect_server(tmp_path_factory.mktemp("prefect-server") / "server.log")
    try:
        os.environ["PREFECT_API_URL"] = url
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        stop_process(proc)
