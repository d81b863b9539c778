"""The single-process alternative builds the same schedules as prefect.yaml, without a work pool."""

from __future__ import annotations

from flows.serve import build_deployments


def test_serve_builds_a_nightly_retrain_per_category_an_on_demand_one_and_the_watch():
    deployments = {
        d.name: d
        for d in build_deployments(
            ["fabric", "washer"], project_dir="/srv/diffad", cron="15 1 * * *", options={"tolerance": 0.05}
        )
    }
    assert set(deployments) == {"nightly-fabric", "nightly-washer", "on-demand", "data-watch", "monitor"}
    fabric = deployments["nightly-fabric"]
    assert [s.schedule.cron for s in fabric.schedules] == ["15 1 * * *"]
    assert fabric.parameters["category"] == "fabric" and fabric.parameters["tolerance"] == 0.05
    assert fabric.parameters["project_dir"] == "/srv/diffad"
    assert not deployments["on-demand"].schedules
    watch = deployments["data-watch"]
    assert [c["name"] for c in watch.parameters["categories"]] == ["fabric", "washer"]
    assert [s.schedule.cron for s in watch.schedules] == ["0 * * * *"]
    monitor = deployments["monitor"]
    assert [c["name"] for c in monitor.parameters["categories"]] == ["fabric", "washer"]
    assert [s.schedule.cron for s in monitor.schedules] == ["30 * * * *"]
