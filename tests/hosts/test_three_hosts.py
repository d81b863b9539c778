"""Three hosts on one machine, running the commands of docs/orchestration.md "Several machines".

Each host is a Linux network namespace (``ip netns``) on a bridge with an address from
198.18.0.0/15 (reserved for network tests) and no route out, and every process of a host runs in
a private mount namespace (``unshare -m``) in which its own checkout is mounted at one path that
is the same on every host (as ``/srv/diffad`` is in the doc) and the other hosts' folders are
hidden. Each host has its own checkout, DVC cache and temp folder; the virtual environment and the
code are shared read-only.

    server   198.18.0.1   PostgreSQL, the Prefect server on it, sshd (DVC remote + model
                          registry), the orchestrator worker (cpu queue)
    worker1  198.18.0.2   a gpu-queue worker, limit 1
    worker2  198.18.0.3   a gpu-queue worker, limit 1

The tiny three-stage project of tests/flows/conftest.py stands in for the pipeline. Everything
is torn down at the end, also on failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.flows.conftest import ROOT, build_tiny_project, start_prefect_server
from tests.services import require_services, run, start_postgres, start_sshd

pytestmark = [pytest.mark.slow, pytest.mark.hosts]

SERVER_IP = "198.18.0.1"
ADDRESSES = {"server": SERVER_IP, "worker1": "198.18.0.2", "worker2": "198.18.0.3"}
SSH_PORT = 2222
BARRIER_PORT = 2300
PREFECT = [sys.executable, "-m", "prefect"]
FLOW_TIMEOUT_S = 300


class Hosts:
    """The namespaces, their folders and the commands that run "on" a host."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.tag = uuid.uuid4().hex[:6]
        self.ns = {name: f"diffad-{name}-{self.tag}" for name in ADDRESSES}
        self.same = base / "checkout"  # every host's own checkout appears here, on that host only
        self.same.mkdir()
        self.processes: list[subprocess.Popen] = []
        for name in ADDRESSES:
            for sub in ("tmp", "home"):
                (self.root(name) / sub).mkdir(parents=True)

    def root(self, host: str) -> Path:
        return self.base / host

    def prefix(self, host: str) -> tuple[str, ...]:
        """Run a command on ``host``: its network namespace, a private mount namespace with its own
        checkout at :attr:`same` and the other hosts' folders hidden."""
        others = " ".join(str(self.root(h)) for h in ADDRESSES if h != host)
        script = (
            f"mount --bind {self.root(host) / 'project'} {self.same} && "
            f'for d in {others}; do mount -t tmpfs -o size=1m none "$d"; done && exec "$@"'
        )
        return ("ip", "netns", "exec", self.ns[host], "unshare", "-m", "--propagation", "private",
                "sh", "-c", script, "sh")  # fmt: skip

    def env(self, host: str, **extra: str) -> dict[str, str]:
        home = self.root(host) / "home"
        return {
            **os.environ,
            "HOME": str(home),
            "TMPDIR": str(self.root(host) / "tmp"),
            "PREFECT_HOME": str(home / ".prefect"),
            "PREFECT_API_URL": f"http://{SERVER_IP}:4200/api",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "DIFFAD_PROJECT_DIR": str(ROOT),
            "DIFFAD_REGISTRY": f"ssh://root@{SERVER_IP}:{SSH_PORT}{self.root('server') / 'registry.git'}",
            "GIT_SSH_COMMAND": (
                f"ssh -i {self.root(host) / 'key'} -o UserKnownHostsFile={self.root(host) / 'known_hosts'}"
                " -o StrictHostKeyChecking=yes -o BatchMode=yes"
            ),
            "TINY_HOST": host,
            "TINY_RUN_LOG": str(self.root(host) / "trained.log"),
            # a run's evaluate stage hangs while the test has put a ``stall`` file on this host
            "TINY_EVALUATE_HOOK": f"while [ -e {self.root(host) / 'stall'} ]; do sleep 1; done",
            **extra,
        }

    def run(self, host: str, *cmd: str, timeout: float = 240, **extra: str) -> str:
        done = subprocess.run([*self.prefix(host), *cmd], cwd=ROOT, env=self.env(host, **extra),
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip
        assert done.returncode == 0, f"{host}: {' '.join(cmd)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    def start(self, host: str, *cmd: str, log: str, **extra: str) -> subprocess.Popen:
        out = (self.root(host) / log).open("w")
        proc = subprocess.Popen([*self.prefix(host), *cmd], cwd=ROOT, env=self.env(host, **extra),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.processes.append(proc)
        return proc

    def power_off(self, host: str) -> None:
        """Every process of ``host`` killed at once, as when the machine dies (no clean-up runs)."""
        pids = run(["ip", "netns", "pids", self.ns[host]]).stdout.split()
        subprocess.run(["kill", "-9", *pids], capture_output=True)

    def stalled_host(self) -> str | None:
        """The worker host whose run waits in its ``stall`` hook (see :meth:`env`), if any."""
        for host in ("worker1", "worker2"):
            marker = str(self.root(host) / "stall")
            for pid in run(["ip", "netns", "pids", self.ns[host]]).stdout.split():
                try:
                    if marker in Path(f"/proc/{pid}/cmdline").read_text():
                        return host
                except OSError:
                    continue
        return None

    def build_network(self) -> None:
        server = self.ns["server"]
        for ns in self.ns.values():
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", server, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", server, "addr", "add", f"{SERVER_IP}/24", "dev", "br0"])
        run(["ip", "-n", server, "link", "set", "br0", "up"])
        for i, host in enumerate(("worker1", "worker2")):
            veth = f"dv{i}{self.tag}"
            run(["ip", "link", "add", veth, "netns", server, "type", "veth", "peer", "name", "eth0",
                 "netns", self.ns[host]])  # fmt: skip
            run(["ip", "-n", server, "link", "set", veth, "master", "br0", "up"])
            run(["ip", "-n", self.ns[host], "addr", "add", f"{ADDRESSES[host]}/24", "dev", "eth0"])
            run(["ip", "-n", self.ns[host], "link", "set", "eth0", "up"])

    def teardown(self) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, 9)  # a worker's flow runs with it
                except (ProcessLookupError, PermissionError):
                    pass
                proc.kill()
                proc.wait(timeout=30)
        for ns in self.ns.values():
            for pid in subprocess.run(
                ["ip", "netns", "pids", ns], capture_output=True, text=True
            ).stdout.split():
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.fixture
def hosts():
    require_services("postgres", "sshd")
    base = Path(tempfile.mkdtemp(prefix="diffad-hosts-"))
    found = Hosts(base)
    try:
        found.build_network()
        yield found
    finally:
        found.teardown()
        shutil.rmtree(base, ignore_errors=True)


def _flow_run_states(hosts: Hosts, sql: str) -> list[str]:
    return [row for row in hosts.pg.psql(sql, prefix=hosts.prefix("server")).split("\n") if row]


def _final_since(hosts: Hosts, flow: str, since: str) -> list[str]:
    """'<run name> <state> <category>' of the final runs of ``flow`` created after ``since``."""
    sql = (
        "SELECT r.name || ' ' || r.state_type || ' ' || coalesce(r.parameters->>'category', '') "
        f"FROM flow_run r JOIN flow f ON f.id = r.flow_id WHERE f.name = '{flow}' "
        f"AND r.created > '{since}' AND r.state_type IN ('COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED') "
        "ORDER BY r.end_time"
    )
    return _flow_run_states(hosts, sql)


def _wait_final(hosts: Hosts, flow: str, count: int, since: str = "1970-01-01") -> list[str]:
    """'<run name> <state> <category>' of ``count`` final runs of ``flow`` created after ``since``."""
    deadline = time.monotonic() + FLOW_TIMEOUT_S
    while len(rows := _final_since(hosts, flow, since)) < count:
        assert time.monotonic() < deadline, f"{flow} runs not final: {rows}\n{_what_ran(hosts)}"
        time.sleep(2)
    return rows


def _what_ran(hosts: Hosts) -> str:
    """Every flow run since the server started (name, state, message) and the tail of each host's logs:
    what a failed wait shows, so a run that never came is told apart from one that came late."""
    sql = (
        "SELECT to_char(r.created, 'HH24:MI:SS') || ' ' || r.name || ' ' || coalesce(r.state_name, '') || ' '"
        " || coalesce(s.message, '') FROM flow_run r LEFT JOIN flow_run_state s ON s.id = r.state_id"
        " WHERE r.state_type <> 'SCHEDULED' ORDER BY r.created"
    )
    runs = "\n".join(_flow_run_states(hosts, sql))
    files = [p for h in ADDRESSES for p in hosts.root(h).glob("*.log")]
    files.append(hosts.root("server") / "sshd" / "sshd.log")
    logs = "\n".join(f"--- {p.relative_to(hosts.base)}\n{p.read_text()[-1500:]}" for p in files if p.exists())
    recent = [f"{r['category']} {r['outcome']}: {r.get('reason') or ''}"[:300] for r in _records(hosts, "")]
    recent = recent[-4:]
    return f"flow runs:\n{runs}\nlast run records:\n" + "\n".join(recent) + f"\n{logs}"


FETCH = """\
import json, os, sys
from pathlib import Path
from diffad.registry import fetch_bundle
served = {}
for category in sys.argv[2:]:
    version, bundle = fetch_bundle(Path(sys.argv[1]), os.environ["DIFFAD_REGISTRY"], category)
    served[category] = [version.tag, (bundle / "model.json").read_text()]
print(json.dumps(served))
"""


# The deployments' own schedules (hourly data-watch and monitor, the nightly retrains) off: a scheduled
# run that falls inside the test would take a worker's only slot, and a run the test waits for would
# wait behind it.
UNSCHEDULE = """\
import asyncio
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
async def main():
    async with get_client() as client:
        for deployment in await client.read_deployments():
            for schedule in deployment.schedules:
                await client.delete_deployment_schedule(deployment.id, schedule.id)
        scheduled = FlowRunFilterState(type=FlowRunFilterStateType(any_=["SCHEDULED"]))
        for run in await client.read_flow_runs(flow_run_filter=FlowRunFilter(state=scheduled)):
            await client.delete_flow_run(run.id)
        assert not await client.read_flow_runs(flow_run_filter=FlowRunFilter(state=scheduled))
asyncio.run(main())
"""


# "At once" made certain: each of the two runs waits in its evaluate stage (after it read the
# registry's prod version) until the other got there too; without it a loaded machine may run them
# one after the other, and then both are rightly accepted.
BARRIER = """\
import socket, sys
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
server.settimeout(240)
waiting = [server.accept()[0] for _ in range(int(sys.argv[3]))]
for peer in waiting:
    peer.sendall(b"go")
    peer.close()
"""
ARRIVE = (
    f'{sys.executable} -c \'import socket; s = socket.create_connection(("{SERVER_IP}", {BARRIER_PORT}));'
    ' s.settimeout(240); assert s.recv(2) == b"go"\''
)


def _tags(bare: Path) -> list[str]:
    return run(["git", "-C", str(bare), "tag", "--list"]).stdout.split()


def _now(hosts: Hosts) -> str:
    return _flow_run_states(hosts, "SELECT now()")[0]


def _trained(hosts: Hosts) -> dict[str, list[str]]:
    """Which host really ran ``train`` (not restored), in order, per host."""
    logs = {h: hosts.root(h) / "trained.log" for h in ("worker1", "worker2")}
    return {h: log.read_text().split() if log.exists() else [] for h, log in logs.items()}


def _records(hosts: Hosts, since: str) -> list[dict]:
    """Every worker's run records, oldest first."""
    paths = [
        p for h in ("worker1", "worker2") for p in (hosts.root(h) / "project/runs/history").glob("*.json")
    ]
    records = [json.loads(p.read_text()) for p in paths]
    return sorted((r for r in records if r["finished"] > since), key=lambda r: r["finished"])


def _run_deployment(hosts: Hosts, params: dict, env: dict | None = None) -> None:
    """``prefect deployment run retrain/on-demand`` with ``params`` (and a run's own env)."""
    extra = ["--job-variable", f"env={json.dumps(env)}"] if env else []
    params = {"project_dir": str(hosts.same), **params}
    hosts.run(
        "server", *PREFECT, "deployment", "run", "retrain/on-demand", "--params", json.dumps(params), *extra
    )


def test_three_hosts_share_server_remote_and_registry(hosts):
    remote = f"ssh://root@{SERVER_IP}:{SSH_PORT}{hosts.root('server') / 'remote'}"
    for host in ADDRESSES:  # each host: its own checkout with the shared remote (the doc's commands)
        project = build_tiny_project(hosts.root(host) / "project", hosts.root(host) / "unused")
        for args in (
            ("remote", "add", "-d", "storage", remote),
            ("remote", "modify", "storage", "timeout", "20"),
            ("remote", "modify", "--local", "storage", "keyfile", str(hosts.root(host) / "key")),
        ):
            run([sys.executable, "-m", "dvc", *args], cwd=project)
    # --- server host: PostgreSQL, the Prefect server on it, sshd for the DVC remote and the registry
    server = hosts.prefix("server")
    hosts.pg = start_postgres(prefix=server)
    try:
        prefect, _ = start_prefect_server(
            hosts.root("server") / "prefect.log",
            env={**hosts.env("server"), "PREFECT_API_DATABASE_CONNECTION_URL": hosts.pg.url},
            host=SERVER_IP,
            prefix=server,
        )
        hosts.processes.append(prefect)
        sshd = start_sshd(hosts.root("server") / "sshd", host=SERVER_IP, port=SSH_PORT, prefix=server)
        hosts.processes.append(sshd.process)
        registry_git = hosts.root("server") / "registry.git"
        run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(registry_git)])
        for host in ADDRESSES:  # the key made for DVC and the server's host key, on every host
            shutil.copy(sshd.key, hosts.root(host) / "key")
            shutil.copy(sshd.known_hosts, hosts.root(host) / "known_hosts")

        # --- the doc's commands: pool, queue, deployments, workers
        hosts.run("server", *PREFECT, "work-pool", "create", "gpu", "--type", "process")
        hosts.run("server", *PREFECT, "work-queue", "create", "cpu", "--pool", "gpu")
        hosts.run("server", *PREFECT, "--no-prompt", "deploy", "--all", timeout=300)
        hosts.run("server", sys.executable, "-c", UNSCHEDULE)
        hosts.run("server", *PREFECT, "automation", "create", "--from-file", "flows/automations.yaml")
        hosts.start("server", *PREFECT, "worker", "start", "--pool", "gpu", "--work-queue", "cpu",
                    "--name", "orchestrator", log="worker.log")  # fmt: skip
        for host in ("worker1", "worker2"):
            hosts.start(host, *PREFECT, "worker", "start", "--pool", "gpu", "--work-queue", "default",
                        "--limit", "1", "--name", f"gpu-{host}", log="worker.log")  # fmt: skip

        # --- retrain-all over two categories: each worker takes one
        options = {"retries": 1, "retry_delay_s": 0.2}
        categories = [{"name": "alpha"}, {"name": "beta", "path": "data/raw_beta"}]
        params = {"project_dir": str(hosts.same), "categories": categories, "options": options, "poll_s": 1}
        hosts.run("server", *PREFECT, "deployment", "run", "retrain-all/all-categories",
                  "--params", json.dumps(params))  # fmt: skip
        [fan_out] = _wait_final(hosts, "retrain-all", 1)
        assert " COMPLETED" in fan_out, fan_out
        retrains = _wait_final(hosts, "retrain", 2)
        assert all(" COMPLETED " in row for row in retrains), retrains
        ran = {h: sorted(p.stem for p in (hosts.root(h) / "project/runs/history").glob("*.json"))
               for h in ("worker1", "worker2")}  # fmt: skip
        assert all(len(v) == 1 for v in ran.values()), ran  # both workers took work
        assert sorted(_tags(registry_git)) == ["alpha#prod#1", "alpha@v1.0.0", "beta#prod#1", "beta@v1.0.0"]

        # --- the server host serves the promoted models: registry + DVC remote, nothing run there
        served = json.loads(
            hosts.run("server", sys.executable, "-c", FETCH, str(hosts.same), "alpha", "beta")
        )
        for category in ("alpha", "beta"):
            accepted = Path("project/runs") / category / "accepted/models/bundle/model.json"
            [bundle] = [
                hosts.root(h) / accepted
                for h in ("worker1", "worker2")
                if (hosts.root(h) / accepted).exists()
            ]
            assert served[category] == [f"{category}@v1.0.0", bundle.read_text()]

        # --- a third category on whichever worker is free: `train` is restored from the remote's run-cache
        trained = _trained(hosts)
        since = _now(hosts)
        _run_deployment(hosts, {"category": "gamma", **options})
        [gamma] = _wait_final(hosts, "retrain", 1, since)
        assert gamma.endswith("COMPLETED gamma"), (gamma, _records(hosts, since="")[-1]["reason"])
        assert _trained(hosts) == trained  # nobody trained again

        # --- two workers promote the same category at once: one wins, the other is not promoted
        since = _now(hosts)
        barrier = (sys.executable, "-c", BARRIER, SERVER_IP, str(BARRIER_PORT), "2")
        hosts.start("server", *barrier, log="barrier.log")
        for _ in range(2):
            _run_deployment(
                hosts,
                {"category": "alpha", "overrides": ["train.quality=0.95"], **options},
                env={"TINY_EVALUATE_HOOK": ARRIVE},
            )
        states = sorted(row.split()[1] for row in _wait_final(hosts, "retrain", 2, since))
        assert states == ["COMPLETED", "FAILED"], states
        assert sorted(t for t in _tags(registry_git) if t.startswith("alpha")) == [
            "alpha#prod#1", "alpha#prod#2", "alpha@v1.0.0", "alpha@v2.0.0"]  # fmt: skip
        outcomes = [r["outcome"] for r in _records(hosts, since="") if r["category"] == "alpha"]
        assert sorted(outcomes[-2:]) == ["accepted", "not_promoted"], outcomes

        # --- a worker host dies mid-run: the run ends Crashed (no heartbeats), retrain-all queues the
        # category again and the other worker promotes it; nothing of the dead run is visible
        since = _now(hosts)
        for host in ("worker1", "worker2"):
            (hosts.root(host) / "stall").touch()
        delta = {"name": "delta", "overrides": ["train.quality=0.93"]}  # evaluate runs: not restored
        params = {"project_dir": str(hosts.same), "categories": [delta], "options": options, "poll_s": 1}
        hosts.run("server", *PREFECT, "deployment", "run", "retrain-all/all-categories",
                  "--params", json.dumps(params))  # fmt: skip
        deadline = time.monotonic() + FLOW_TIMEOUT_S
        while (dead := hosts.stalled_host()) is None:
            ended = _final_since(hosts, "retrain", since)  # a run that ended before its evaluate: no wait
            assert time.monotonic() < deadline and not ended, f"delta never stalled\n{_what_ran(hosts)}"
            time.sleep(1)
        hosts.power_off(dead)
        for host in ("worker1", "worker2"):
            (hosts.root(host) / "stall").unlink()
        [crashed] = _wait_final(hosts, "retrain", 1, since)
        assert " CRASHED delta" in crashed, crashed
        assert not [t for t in _tags(registry_git) if t.startswith("delta")]  # nothing half-promoted
        [fan_out] = _wait_final(hosts, "retrain-all", 1, since)
        assert " COMPLETED" in fan_out, fan_out
        rows = _wait_final(hosts, "retrain", 2, since)
        assert rows[-1].startswith("retrain-delta-again1 COMPLETED"), rows
        assert sorted(t for t in _tags(registry_git) if t.startswith("delta")) == [
            "delta#prod#1", "delta@v1.0.0"]  # fmt: skip
        survivor = "worker2" if dead == "worker1" else "worker1"
        assert _records(hosts, since="")[-1]["category"] == "delta"
        assert (hosts.root(survivor) / "project/runs/delta/accepted").is_dir()

        # --- the remote goes down during a run: the push fails, nothing is promoted anywhere
        before = sorted(_tags(registry_git))
        since = _now(hosts)
        hook = {"TINY_EVALUATE_HOOK": f"kill {sshd.process.pid}"}
        _run_deployment(hosts, {"category": "beta", "overrides": ["train.quality=0.97"], **options}, env=hook)
        [row] = _wait_final(hosts, "retrain", 1, since)
        assert " FAILED " in row, row
        assert sorted(_tags(registry_git)) == before
        last = _records(hosts, since="")[-1]
        assert last["category"] == "beta" and last["outcome"] == "failed", last
        assert "dvc push" in last["reason"], last["reason"]
    finally:
        hosts.pg.stop(prefix=server)
