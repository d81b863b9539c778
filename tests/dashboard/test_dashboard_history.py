"""History sources: `dvc exp show --json`, Prefect run records, and the Prefect REST API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml
from fixtures import CATEGORY, FAILED_CHECK, HISTORY, REJECTED_RUN

from dashboard import history

ROOT = Path(__file__).resolve().parents[2]


def _rev(rev: str, name: str | None, time: str | None, auroc: float | None, category: str = "fabric") -> dict:
    """One revision as DVC 3.67 prints it (checked with a real `dvc exp run`; null metrics are dropped)."""
    metrics = (
        {}
        if auroc is None
        else {
            "metrics/ensemble.json": {"data": {"image_auroc": auroc}},
            "metrics/padim.json": {"data": {"image_auroc": 0.7}},
            "reports/validation/summary.json": {"data": {"checks_failed": 0}},  # another metrics file
        }
    )
    return {
        "rev": rev,
        "name": name,
        "error": None,
        "experiments": None,
        "data": {
            "rev": rev,
            "timestamp": time,
            "metrics": metrics,
            "deps": {},
            "outs": {},
            "meta": {},
            "params": {"params.yaml": {"data": {"data": {"category": category}, "seed": 0}}},
        },
    }


DVC_PAYLOAD = [
    _rev("workspace", None, None, 0.99),
    {
        **_rev("47e435bc952f96f1cdd0e741048bda3e659111ff", "main", "2026-11-23T15:25:36", 0.5),
        "experiments": [
            {
                "revs": [
                    _rev("a3c9260cd1e6154a67f1bcc00414a610697e8e37", "minim-sumo", "2026-11-23T15:25:39", 0.6)
                ],
                "executor": None,
                "name": "minim-sumo",
            },
            {
                "revs": [
                    _rev(
                        "653499f382158d462d69e91151d24cac77f927c9",
                        "soled-jake",
                        "2026-11-23T15:25:37",
                        0.75,
                        category="washer",
                    )
                ],
                "executor": None,
                "name": "soled-jake",
            },
            {
                "revs": [{"rev": "deadbeef", "name": "failed-exp", "data": None, "error": {"msg": "boom"}}],
                "name": "failed-exp",
            },
            {"revs": [_rev("cafe", "no-metrics", "2026-11-23T15:26:00", None)], "name": "no-metrics"},
        ],
    },
]


def test_parse_dvc_exp_show_flattens_baselines_and_experiments() -> None:
    runs = history.parse_dvc_exp_show(DVC_PAYLOAD)
    names = [r.name for r in runs]
    assert names == ["workspace", "main", "minim-sumo", "soled-jake"]  # no failed or empty experiment
    assert [r.metrics["ensemble"]["image_auroc"] for r in runs] == [0.99, 0.5, 0.6, 0.75]
    assert [r.category for r in runs] == ["fabric", "fabric", "fabric", "washer"]
    assert np.isnan(runs[0].metrics["ensemble"]["pixel_auroc"])  # absent = not applicable
    assert runs[-1].params["data.category"] == "washer" and runs[-1].changed == {"data.category": "washer"}
    assert runs[1].changed == {} and history.changed_params(runs[-1]) == 'data.category="washer"'


@pytest.mark.parametrize("payload", [None, {}, "text", [1, "x", {"rev": "r", "data": "bad"}]])
def test_parse_dvc_exp_show_tolerates_junk(payload: object) -> None:
    assert history.parse_dvc_exp_show(payload) == []


def test_history_table_orders_by_time_and_takes_deltas_over_gaps() -> None:
    def run(name: str, time: str | None, values: dict[str, float]) -> history.Run:
        return history.Run("dvc", name, time, None, {m: {"image_auroc": v} for m, v in values.items()})

    table = history.history_table(
        [
            run("c", "2026-03", {"a": 0.9, "b": 0.5}),
            run("a", "2026-01", {"a": 0.8}),
            run("b", "2026-02", {"b": 0.4}),
            run("untimed", None, {"a": 0.7}),
        ],
        "image_auroc",
    )
    assert table["run"].tolist() == ["a", "b", "c", "untimed"]
    assert table["Δ a"].tolist()[2:] == pytest.approx([0.1, -0.2])  # c vs a (b has no value for a)
    assert np.isnan(table["Δ a"][0]) and np.isnan(table["Δ b"][1])
    assert table["Δ b"][2] == pytest.approx(0.1)


def test_run_records_are_read_and_broken_files_counted(fixture_root: Path) -> None:
    runs, bad = history.read_records_as_runs(fixture_root)
    assert bad == 1
    assert [r.name for r in runs] == [name for name, _, _ in HISTORY] + [REJECTED_RUN]  # oldest first
    assert all(r.source == "prefect" and r.category == CATEGORY for r in runs)
    assert [r.outcome for r in runs] == ["accepted", "accepted", "rejected"]
    assert FAILED_CHECK in runs[-1].reason and not runs[-1].metrics  # kept although it has no metrics


@pytest.mark.slow
def test_dvc_experiments_reads_a_real_repository(tmp_path: Path) -> None:
    """Against the real dvc CLI: a git+dvc repo with one stage writing the headline metrics with
    the evaluate stage's writers, declared as evaluate's dvc.yaml declares them."""
    dvc = history._dvc_executable()
    if dvc is None or shutil.which("git") is None:
        pytest.skip("dvc or git is not installed")
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "PATH": f"{Path(sys.executable).parent}:" + os.environ.get("PATH", ""),
    }

    def sh(*cmd: str) -> None:
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True, timeout=120)

    (tmp_path / "params.yaml").write_text("data:\n  category: fabric\nk: 0.5\n")
    (tmp_path / "make.py").write_text(
        "from pathlib import Path\nimport yaml\n"
        "from diffad.artifacts.layout import HeadlineDir, ReportsDir\n"
        "from diffad.artifacts.records import write_headline, write_metrics\n"
        "k = yaml.safe_load(open('params.yaml'))['k']\n"
        "reports = ReportsDir(Path('reports'))\n"
        "write_metrics(reports.metrics, {'ensemble': {'image_auroc': k, 'aupro': None}})\n"
        "write_headline(HeadlineDir(Path('metrics')), reports.metrics)\n"
    )
    evaluate = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["evaluate"]
    stage = {"cmd": "python make.py", "deps": ["make.py"], "params": ["k"], "metrics": evaluate["metrics"]}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"ev": stage}}))
    sh("git", "init", "-q")
    sh(dvc, "init", "-q")
    sh(dvc, "repro", "-q")
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "base")
    sh(dvc, "exp", "run", "-q", "-S", "k=0.75", "-n", "higher")
    runs, note = history.dvc_experiments(str(tmp_path))
    assert note == ""
    by_name = {r.name: r for r in runs}
    assert by_name["higher"].metrics["ensemble"]["image_auroc"] == 0.75
    assert [r.metrics["ensemble"]["image_auroc"] for r in runs if r.name not in ("higher", "workspace")] == [
        0.5
    ]
    assert by_name["higher"].changed == {"k": 0.75} and by_name["workspace"].changed == {"k": 0.75}
    assert all(r.category == "fabric" for r in runs)


def test_dvc_experiments_outside_a_repository(tmp_path: Path) -> None:
    assert history.dvc_experiments(str(tmp_path)) == ([], "not a DVC repository")


# ---------------------------------------------------------------- Prefect REST

FLOW_ID = "7d3c8c6e-0000-4000-8000-000000000001"
FLOW_RUNS = [
    {
        "id": "r1",
        "name": "brave-otter",
        "flow_id": FLOW_ID,
        "state_type": "COMPLETED",
        "state_name": "Completed",
        "start_time": "2026-11-23T10:00:00Z",
        "end_time": "2026-11-23T10:04:00Z",
        "total_run_time": 240.5,
        "parameters": {"category": "fabric"},
    },
    {
        "id": "r2",
        "name": "quiet-lynx",
        "flow_id": FLOW_ID,
        "state_type": "FAILED",
        "state": {"type": "FAILED", "name": "Failed"},
        "start_time": None,
        "expected_start_time": "2026-11-23T09:00Z",
        "total_run_time": 3.0,
        "parameters": {},
    },
]


@pytest.fixture
def prefect_api() -> Iterator[tuple[str, list[tuple[str, dict]]]]:
    """A stand-in Prefect API on 127.0.0.1: (base URL ending in /api, the requests it received)."""
    received: list[tuple[str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.path, body))
            answer = {
                "/api/flow_runs/filter": FLOW_RUNS,
                "/api/flows/filter": [{"id": FLOW_ID, "name": "pipeline"}],
            }
            payload = json.dumps(answer.get(self.path, {"detail": "not found"})).encode()
            self.send_response(200 if self.path in answer else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api", received
    finally:
        server.shutdown()
        server.server_close()


def test_prefect_runs_posts_the_filter_and_names_flows(prefect_api) -> None:
    url, received = prefect_api
    runs = history.prefect_runs(url + "/", limit=5)
    not_scheduled = {"state": {"type": {"not_any_": ["SCHEDULED"]}}}  # future cron runs would sort first
    assert received[0] == (
        "/api/flow_runs/filter",
        {"limit": 5, "sort": "START_TIME_DESC", "flow_runs": not_scheduled},
    )
    assert runs["run"].tolist() == ["brave-otter", "quiet-lynx"]
    assert runs["flow"].tolist() == ["pipeline", "pipeline"]
    assert runs["state"].tolist() == ["Completed", "Failed"]
    assert runs["start"].tolist() == ["2026-11-23T10:00:00Z", "2026-11-23T09:00Z"]
    assert runs["duration_s"].tolist() == [240.5, 3.0]


def test_prefect_unreachable_or_wrong_url_raises_a_clear_error(prefect_api) -> None:
    url, _ = prefect_api
    with pytest.raises(history.PrefectUnavailable, match="HTTP 404"):
        history.prefect_runs(url + "/nope")
    closed = f"http://127.0.0.1:{_closed_port()}/api"
    with pytest.raises(history.PrefectUnavailable, match="flow_runs/filter"):
        history.prefect_runs(closed, timeout=1.0)


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
