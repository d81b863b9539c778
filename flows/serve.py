"""One machine, no workers: serve the nightly retrains, the data watch and the monitor from one process.

``prefect.serve`` (the many-deployment form of ``flow.serve``) registers the deployments with the
API and runs their scheduled runs as subprocesses of this process; ``limit=1`` keeps one GPU job
at a time. With no ``PREFECT_API_URL`` set, start ``prefect server start`` first (serve needs a
persistent API). Equivalent to the ``prefect.yaml`` deployments without a work pool::

    python -m flows.serve --category fabric --category washer --cron "0 2 * * *"
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from prefect import serve
from prefect.schedules import Cron

from flows.data_watch import data_watch
from flows.monitor import monitor
from flows.retrain import CategorySpec, retrain, retrain_parameters

NIGHTLY_CRON = "0 2 * * *"  # 02:00 every night
WATCH_CRON = "0 * * * *"  # on the hour
MONITOR_CRON = "30 * * * *"  # half past: production scores and new verdicts


def build_deployments(
    categories: Sequence[str],
    project_dir: str = ".",
    cron: str = NIGHTLY_CRON,
    watch_cron: str = WATCH_CRON,
    timezone: str = "UTC",
    options: dict[str, Any] | None = None,
) -> list[Any]:
    """A nightly ``retrain`` per category, an on-demand one, the hourly data watch and monitor."""
    specs = [CategorySpec(name=name) for name in categories]
    deployments = [
        retrain.to_deployment(
            name=f"nightly-{spec.name}",
            schedule=Cron(cron, timezone=timezone),
            parameters=retrain_parameters(spec, project_dir, options),
            tags=["nightly", spec.name],
        )
        for spec in specs
    ]
    deployments.append(retrain.to_deployment(name="on-demand", parameters={"project_dir": project_dir}))
    deployments.append(
        data_watch.to_deployment(
            name="data-watch",
            schedule=Cron(watch_cron, timezone=timezone),
            parameters={
                "categories": [s.model_dump() for s in specs],
                "project_dir": project_dir,
                "options": options or {},
            },
        )
    )
    deployments.append(
        monitor.to_deployment(
            name="monitor",
            schedule=Cron(MONITOR_CRON, timezone=timezone),
            parameters={
                "categories": [s.model_dump() for s in specs],
                "project_dir": project_dir,
                "options": options or {},
            },
        )
    )
    return deployments


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--category", action="append", required=True, help="repeat for several")
    parser.add_argument("--project-dir", default=".")
    parser.add_argument("--cron", default=NIGHTLY_CRON)
    parser.add_argument("--watch-cron", default=WATCH_CRON)
    parser.add_argument("--timezone", default="UTC")
    args = parser.parse_args(argv)
    serve(
        *build_deployments(args.category, args.project_dir, args.cron, args.watch_cron, args.timezone),
        limit=1,
    )


if __name__ == "__main__":
    main()
