"""prefect.yaml: its deployments load, target the `gpu` pool on cron schedules, and a worker runs them."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PREFECT_YAML = ROOT / "prefect.yaml"
PREFECT = [sys.executable, "-m", "prefect"]


def _deployments() -> list[dict]:
    return yaml.safe_load(PREFECT_YAML.read_text())["deployments"]


def _load_flow(entrypoint: str):
    path, name = entrypoint.split(":")
    module = importlib.import_module(Path(path).with_suffix("").as_posix().replace("/", "."))
    return getattr(module, name)


def test_every_deployment_names_the_gpu_pool_and_a_valid_flow_and_parameters():
    from prefect import Flow

    deployments = _deployments()
    assert {d["name"] for d in deployments} >= {
        "nightly-fabric",
        "nightly-washer",
        "on-demand",
        "all-categories",
    }
    for deployment in deployments:
        assert deployment["work_pool"]["name"] == "gpu"
        flow = _load_flow(deployment["entrypoint"])
        assert isinstance(flow, Flow)
        flow.validate_parameters(deployment.get("parameters") or {})  # unknown or mistyped -> error
        queue, env = (
            deployment["work_pool"]["work_queue_name"],
            deployment["work_pool"]["job_variables"]["env"],
        )
        assert (queue, env["CUDA_VISIBLE_DEVICES"] != "") in {("default", True), ("cpu", False)}
        assert env["DVC_NO_ANALYTICS"] == "1"


def test_nightly_deployments_have_cron_schedules():
    from prefect.client.schemas.schedules import CronSchedule

    by_name = {d["name"]: d for d in _deployments()}
    for name in ("nightly-fabric", "nightly-washer"):
        [schedule] = by_name[name]["schedules"]
        cron = CronSchedule(**schedule)  # validates the cron string and the time zone
        assert cron.cron.split()[2:] == ["*", "*", "*"] and cron.timezone == "UTC"  # once a day
        assert by_name[name]["parameters"]["category"] == name.removeprefix("nightly-")
    assert "schedules" not in by_name["on-demand"]
    [pull] = yaml.safe_load(PREFECT_YAML.read_text())["pull"]
    assert "prefect.deployments.steps.set_working_directory" in pull


def _cli(*args: str, env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(
        [*PREFECT, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_a_gpu_worker_picks_up_a_triggered_run_and_completes_it(
    prefect_server, tiny_project, tmp_path, capsys, stop_process
):
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.deployments import run_deployment

    from flows.retrain import CategorySpec, retrain_all

    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server,
        "DIFFAD_PROJECT_DIR": str(ROOT),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }
    # the commands of docs/orchestration.md
    _cli("work-pool", "create", "gpu", "--type", "process", env=env)
    _cli("work-queue", "create", "cpu", "--pool", "gpu", env=env)
    _cli("--no-prompt", "deploy", "--all", env=env, timeout=240)

    with get_client(sync_client=True) as client:
        deployments = {d.name: d for d in client.read_deployments()}
        assert {
            "nightly-fabric",
            "nightly-washer",
            "on-demand",
            "all-categories",
            "hourly",
            "hourly-check",
        } <= set(deployments)
        assert {d.work_pool_name for d in deployments.values()} == {"gpu"}
        assert deployments["all-categories"].work_queue_name == "cpu"
        nightly = deployments["nightly-fabric"]
        assert [s.schedule.cron for s in nightly.schedules] == ["0 2 * * *"]
        # the server's scheduler turns the cron schedule into runs at 02:00 UTC
        deadline = time.monotonic() + 60
        while not (
            scheduled := client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[nightly.id]))
            )
        ):
            assert time.monotonic() < deadline, "the scheduler created no runs for the cron schedule"
            time.sleep(1)
        assert all((r.expected_start_time.hour, r.expected_start_time.minute) == (2, 0) for r in scheduled)

    parameters = {"project_dir": str(tiny_project), "work_dir": str(tmp_path / "work"), "retry_delay_s": 0.2}
    worker_log = tmp_path / "worker.log"
    with worker_log.open("w") as out:
        worker = subprocess.Popen(
            [*PREFECT, "worker", "start", "--pool", "gpu", "--work-queue", "default"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        started = time.monotonic()
        flow_run = run_deployment("retrain/on-demand", parameters=parameters, timeout=0)
        with get_client(sync_client=True) as client:
            while not (state := client.read_flow_run(flow_run.id).state).is_final():
                assert time.monotonic() - started < 180, f"not finished:\n{worker_log.read_text()[-3000:]}"
                time.sleep(0.5)
        elapsed = time.monotonic() - started
        assert state.is_completed(), f"{state}\n{worker_log.read_text()[-3000:]}"
        assert (tiny_project / "runs" / "alpha" / "accepted" / "metrics.json").exists()
        with capsys.disabled():
            print(
                f"\n[flows] triggered run through a `gpu` worker: {elapsed:.1f} s from trigger to Completed"
            )

        # fan-out: one run of the deployment per category, all taken by the worker
        categories = [CategorySpec(name="alpha"), CategorySpec(name="beta", path="data/raw_beta")]
        fan_out = retrain_all(
            categories=categories,
            project_dir=str(tiny_project),
            deployment="retrain/on-demand",
            options={"work_dir": str(tmp_path / "work")},
            poll_s=0.5,
            return_state=True,
        )
        assert fan_out.is_completed(), f"{fan_out}\n{worker_log.read_text()[-3000:]}"
        assert fan_out.result() == {"alpha": "Completed", "beta": "Completed"}
        assert (tiny_project / "runs" / "beta" / "accepted" / "metrics.json").exists()
    finally:
        stop_process(worker)
    on_demand = deployments["on-demand"].id
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[on_demand]))
        )
    # the trigger above and the fan-out's two; a client retry under load may add a duplicate of the
    # trigger (the fan-out's runs carry idempotency keys), never a failed or foreign run
    assert {(r.state.name, r.work_pool_name) for r in runs} == {("Completed", "gpu")}
    assert {"retrain-alpha", "retrain-beta"} <= {r.name for r in runs} and len(runs) >= 3
