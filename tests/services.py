"""Real servers for the tests that span machines: PostgreSQL (the Prefect server's database) and
OpenSSH (the shared DVC remote), started with the commands docs/orchestration.md gives, in a
temporary folder, on loopback (or an address of a test's own network namespace).

Both need root (``runuser -u postgres``; ``sshd`` switches users) and Debian's packages
(``postgresql``, ``openssh-server``); :func:`require_services` skips the test elsewhere, except
under ``CI=true`` (``.ci/run`` installs them), where a missing service fails it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("DIFFAD_PG_BIN", "/usr/lib/postgresql/15/bin"))
SSHD = Path("/usr/sbin/sshd")


def require_services(*names: str) -> None:
    """Skip (fail under CI=true) unless running as root with the named services installed."""
    have = {
        "postgres": (PG_BIN / "initdb").exists(),
        "sshd": SSHD.exists() and bool(shutil.which("ssh-keygen")),
    }
    missing = [name for name in names if not have[name]]
    reason = None
    if os.geteuid() != 0:
        reason = "needs root (runuser -u postgres, sshd)"
    elif missing:
        reason = f"needs {', '.join(missing)} (apt-get install postgresql openssh-server)"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd``; a failure raises with its output (the tests show what a service said)."""
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


@dataclass(frozen=True)
class Postgres:
    """A PostgreSQL cluster made for one test (``initdb``), its ``prefect`` role and database."""

    data: Path
    host: str
    port: int
    password: str = "prefect-test"

    @property
    def url(self) -> str:
        """``PREFECT_API_DATABASE_CONNECTION_URL`` for this database."""
        return f"postgresql+asyncpg://prefect:{self.password}@{self.host}:{self.port}/prefect"

    def psql(self, sql: str, database: str = "prefect", prefix: tuple[str, ...] = ()) -> str:
        """``sql`` run as the cluster's superuser over its Unix socket; the rows, one per line."""
        cmd = [*prefix, "runuser", "-u", "postgres", "--", str(PG_BIN / "psql"), "-h", str(self.data)]
        return run([*cmd, "-p", str(self.port), "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", sql]).stdout

    def stop(self, prefix: tuple[str, ...] = ()) -> None:
        """Stop the cluster and delete it."""
        pg_ctl = [*prefix, "runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(self.data)]
        subprocess.run([*pg_ctl, "-m", "immediate", "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.data.parent, ignore_errors=True)


def start_postgres(host: str = "127.0.0.1", port: int | None = None, prefix=()) -> Postgres:
    """docs/orchestration.md "The server's database" with ``initdb``: a cluster in a new temporary
    folder that the ``postgres`` user can reach (pytest's are private to root), listening on
    ``host:port``, a ``prefect`` role with a password and a ``prefect`` database it owns.
    ``prefix`` runs the commands elsewhere (e.g. ``ip netns exec server``)."""
    root = Path(tempfile.mkdtemp(prefix="diffad-postgres-"))
    shutil.chown(root, "postgres")
    pg = Postgres(root / "data", host, port or free_port(host))
    as_postgres = [*prefix, "runuser", "-u", "postgres", "--"]
    run([*as_postgres, str(PG_BIN / "initdb"), "-D", str(pg.data), "-U", "postgres", "-E", "UTF8",
         "--locale=C.UTF-8", "--auth-local=peer", "--auth-host=scram-sha-256"])  # fmt: skip
    options = f"-p {pg.port} -k {pg.data} -c listen_addresses={host}"
    run([*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(pg.data), "-l", str(root / "postgres.log"),
         "-w", "-o", options, "start"])  # fmt: skip
    pg.psql(f"CREATE ROLE prefect LOGIN PASSWORD '{pg.password}'", database="postgres", prefix=prefix)
    pg.psql("CREATE DATABASE prefect OWNER prefect", database="postgres", prefix=prefix)
    return pg


@dataclass(frozen=True)
class Sshd:
    """An OpenSSH server made for one test: login with :attr:`key` only, as root, SFTP enabled."""

    root: Path
    host: str
    port: int
    key: Path  # the client's private key (DVC's ``keyfile``)
    known_hosts: Path  # the server's host key, as ``ssh-keyscan`` would record it
    process: subprocess.Popen

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_sshd(root: Path, host: str = "127.0.0.1", port: int | None = None, prefix=()) -> Sshd:
    """docs/orchestration.md "The shared DVC remote": a host key, a key made for DVC, its public half
    authorised, password logins off; ``sshd -D`` in the foreground until :meth:`Sshd.stop`."""
    root.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "host_key")])
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "diffad-dvc", "-f", str(root / "dvc_key")])
    shutil.copy(root / "dvc_key.pub", root / "authorized_keys")
    host_pub = (root / "host_key.pub").read_text().split()[:2]
    known = root / "known_hosts"
    known.write_text(f"[{host}]:{port} {' '.join(host_pub)}\n")
    config = root / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress {host}\nHostKey {root / 'host_key'}\nPidFile {root / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        "Subsystem sftp internal-sftp\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
    log = (root / "sshd.log").open("w")
    proc = subprocess.Popen([*prefix, str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while True:
        check = subprocess.run([*prefix, "ssh-keyscan", "-p", str(port), host], capture_output=True)
        if check.returncode == 0 and check.stdout:
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"sshd did not start:\n{(root / 'sshd.log').read_text()}")
        time.sleep(0.3)
    return Sshd(root, host, port, root / "dvc_key", known, proc)
