"""The model registry every host reads (docs/orchestration.md "The model registry"): GTO tags in a
git repository the hosts share, bundles in the shared DVC remote, run records beside them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from diffad import registry

pytestmark = pytest.mark.slow

FAST = {"retries": 1, "retry_delay_s": 0.2}
BUNDLE = Path("runs/alpha/accepted/models/bundle/model.json")


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def _gto(clone: Path, *args: str) -> str:
    """``gto show alpha#prod`` (the version in prod) with ``args``."""
    gto = Path(sys.executable).with_name("gto")
    done = subprocess.run(
        [str(gto), *args[:1], "alpha#prod", *args[1:]], cwd=clone, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def hosts(tiny_template, tmp_path) -> dict[str, Path]:
    """Two checkouts with their own DVC caches and one shared remote (SSH: test_flows_ssh_remote)."""
    found = {}
    for name in ("host-a", "host-b"):
        found[name] = tmp_path / name / "project"
        shutil.copytree(tiny_template, found[name], symlinks=True)
        subprocess.run(
            [sys.executable, "-m", "dvc", "remote", "add", "-d", "storage", str(tmp_path / "remote")],
            cwd=found[name],
            check=True,
            capture_output=True,
        )
    return found


def test_promotions_are_gto_versions_every_host_serves_and_a_stale_one_loses(prefect_server, hosts, tmp_path):
    from flows.retrain import retrain

    bare = tmp_path / "registry.git"
    _git("init", "--quiet", "--bare", "--initial-branch=main", str(bare), cwd=tmp_path)
    url = str(bare)

    def retrain_on(host: str, **kwargs):
        work = str(tmp_path / host / "work")
        return retrain(
            project_dir=str(hosts[host]), work_dir=work, registry=url, **FAST, **kwargs, return_state=True
        )

    first = retrain_on("host-a")
    assert first.is_completed(), first
    assert sorted(_git("tag", "--list", cwd=bare).split()) == ["alpha#prod#1", "alpha@v1.0.0"]

    # host B has never run anything: it serves host A's model from the registry and the remote
    version, bundle = registry.fetch_bundle(hosts["host-b"], url, "alpha")
    assert version.tag == "alpha@v1.0.0"
    assert (bundle / "model.json").read_bytes() == (hosts["host-a"] / BUNDLE).read_bytes()

    # host B improves on it: judged against the registry's prod (not its own empty runs/), v2 is prod
    second = retrain_on("host-b", overrides=["train.quality=0.95"])
    assert second.is_completed(), second
    clone = registry.sync(url, tmp_path / "reader")
    assert registry.prod_version(clone, "alpha").tag == "alpha@v2.0.0"
    assert _gto(clone, "show", "--ref") == "alpha@v2.0.0\n"  # GTO itself reads the tags
    records = sorted((clone / "runs" / "history").glob("*.json"))
    assert len(records) == 2  # both hosts' runs, in the registry
    judged = json.loads(records[-1].read_text())
    assert judged["baseline"]["source"] == "registry" and "alpha@v1.0.0" in judged["baseline"]["description"]
    assert json.loads((clone / "runs/alpha/accepted/metrics.json").read_text())["tiny"]["image_auroc"] == 0.95

    # a third host judged its run against v1 while host B promoted v2: it loses, the registry is as it was
    before = _git("show-ref", cwd=bare)
    accepted = hosts["host-a"] / "runs" / "alpha" / "accepted"
    files = {name: accepted / name for name in registry.ACCEPTED_FILES}
    with pytest.raises(registry.PromotionLost, match="alpha@v2.0.0"):
        registry.publish(url, tmp_path / "stale", "alpha", files, expected=1, message="stale")
    assert _git("show-ref", cwd=bare) == before
