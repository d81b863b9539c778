"""The Prefect server on PostgreSQL, as docs/orchestration.md "The server's database" sets it up:
runs from several machines at once land in one database (SQLite's single writer made even one
machine's `python -m flows.monitor` fail with ``database is locked``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.flows.conftest import ROOT, start_prefect_server, stop_process, write_dvc_config
from tests.services import require_services, start_postgres

pytestmark = pytest.mark.slow


def test_server_on_postgresql_records_concurrent_retrains(tiny_template, tmp_path):
    require_services("postgres")
    pg = start_postgres()
    server = None
    try:
        server, url = start_prefect_server(
            tmp_path / "server.log", env={"PREFECT_API_DATABASE_CONNECTION_URL": pg.url}
        )
        runs = {}
        for name in ("alpha", "beta"):  # two machines' checkouts, retraining at the same time
            project = tmp_path / name
            shutil.copytree(tiny_template, project, symlinks=True)
            write_dvc_config(project, tmp_path / f"remote-{name}")
            runs[name] = subprocess.Popen(
                [sys.executable, "-m", "flows.retrain", "--project-dir", str(project), "--category", name],
                cwd=ROOT,
                env={**os.environ, "PREFECT_API_URL": url},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        for proc in runs.values():
            output, _ = proc.communicate(timeout=900)
            assert proc.returncode == 0, output[-4000:]
        rows = pg.psql(
            "SELECT f.name || ' ' || r.state_type || ' ' || (r.parameters->>'category') "
            "FROM flow_run r JOIN flow f ON f.id = r.flow_id ORDER BY 1"
        ).split("\n")
        assert [row for row in rows if row] == ["retrain COMPLETED alpha", "retrain COMPLETED beta"]
        tasks = pg.psql("SELECT count(*) FROM task_run WHERE state_type = 'COMPLETED'")
        assert int(tasks) >= 2 * 5  # workspace, graph, validation, two stages, judge, promote, record
    finally:
        if server is not None:
            stop_process(server)
        pg.stop()
