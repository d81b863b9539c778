"""Two machines sharing one DVC remote over SSH (docs/orchestration.md "The shared DVC remote"):
a real ``sshd`` with a key made for DVC, two checkouts with their own DVC caches.

A retrain fetches the remote's run-cache first, so a stage computed on one machine is restored,
not recomputed, on the other; an accepted run is pushed before it is promoted, so a remote that
goes down mid-run fails the run with nothing promoted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import require_services, start_sshd

pytestmark = pytest.mark.slow

FAST = {"retries": 1, "retry_delay_s": 0.2}


def dvc(project: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, capture_output=True, text=True)
    assert done.returncode == 0, f"dvc {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def add_ssh_remote(project: Path, sshd, remote_dir: Path) -> None:
    """The doc's commands on a worker: the shared remote as the default, the key in config.local."""
    dvc(project, "remote", "add", "-d", "storage", f"ssh://root@{sshd.host}:{sshd.port}{remote_dir}")
    dvc(project, "remote", "modify", "storage", "timeout", "20")
    dvc(project, "remote", "modify", "--local", "storage", "keyfile", str(sshd.key))


def tree(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def sshd(tmp_path):
    require_services("sshd")
    server = start_sshd(tmp_path / "sshd")
    yield server
    server.stop()


def test_hosts_share_stages_through_the_ssh_remote_and_a_dead_remote_promotes_nothing(
    prefect_server, tiny_template, tmp_path, sshd, monkeypatch
):
    from flows.retrain import retrain

    remote_dir = tmp_path / "remote"
    hosts = {}
    for name in ("host-a", "host-b"):  # each its own checkout and DVC cache
        hosts[name] = tmp_path / name / "project"
        shutil.copytree(tiny_template, hosts[name], symlinks=True)
        add_ssh_remote(hosts[name], sshd, remote_dir)
    run_log = tmp_path / "trained.log"
    monkeypatch.setenv("TINY_RUN_LOG", str(run_log))

    def retrain_on(host: str, **kwargs):
        monkeypatch.setenv("TINY_HOST", host)
        work = str(tmp_path / host / "work")
        return retrain(project_dir=str(hosts[host]), work_dir=work, **FAST, **kwargs, return_state=True)

    first = retrain_on("host-a")
    assert first.is_completed(), first
    assert run_log.read_text().split() == ["host-a"]
    assert any((remote_dir / "runs").rglob("*")), "the run-cache was not pushed"

    # host B: the default remote's run-cache is fetched first, so `train` is restored, not rerun
    second = retrain_on("host-b")
    assert second.is_completed(), second
    assert run_log.read_text().split() == ["host-a"]
    bundle = Path("runs/alpha/accepted/models/bundle/model.json")
    assert (hosts["host-b"] / bundle).read_bytes() == (hosts["host-a"] / bundle).read_bytes()

    # the remote goes down while host B trains something new: the push fails, nothing is promoted
    accepted = hosts["host-b"] / "runs" / "alpha" / "accepted"
    before = tree(accepted)
    monkeypatch.setenv("TINY_EVALUATE_HOOK", f"kill {sshd.process.pid}")
    third = retrain_on("host-b", overrides=["train.quality=0.95"])
    assert third.is_failed(), third
    assert tree(accepted) == before
    assert run_log.read_text().split() == ["host-a", "host-b"]
    records = [json.loads(p.read_text()) for p in sorted((hosts["host-b"] / "runs/history").glob("*.json"))]
    last = max(records, key=lambda r: r["run_id"])
    assert last["outcome"] == "failed" and last["state"] == "Failed"
    assert "dvc push" in last["reason"] and "storage" in last["reason"], last["reason"]
    assert os.environ.get("PREFECT_API_URL") == prefect_server
