"""Retrain on new data: a scheduled check of the raw data's content hash against the last accepted run.

For each category the raw data folder (``data.path`` after the category's overrides) is hashed
with :func:`flows.workspace.tree_hash` (paths and bytes, not timestamps), the same hash a
``retrain`` records for its snapshot in ``runs/<category>/accepted/run.json``. A retrain starts
only when the hash differs from the accepted one, and also from the hash of the latest attempt
(``runs/<category>/last_run.json``), so a data set that already failed validation is not retried
every hour; fix the data (its hash changes) or start a retrain by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.deployments import run_deployment

from diffad.artifacts.layout import ProjectLayout
from diffad.artifacts.runs import read_accepted, read_last_run
from flows import promotion
from flows.retrain import CategorySpec, retrain, retrain_parameters
from flows.workspace import apply_overrides, category_overrides, lookup, read_params, tree_hash


@dataclass(frozen=True)
class DataCheck:
    """The raw data of one category now, and as the last accepted run and the last attempt saw it."""

    category: str
    current: str  # tree_hash of the raw data now
    accepted: str | None  # ... of the last accepted run (None: never accepted)
    attempted: str | None  # ... of the latest run, accepted or not

    @property
    def changed(self) -> bool:
        """True when the data differs from the accepted run and was not already tried."""
        return self.current != self.accepted and self.current != self.attempted


def check_data(project: Path, spec: CategorySpec) -> DataCheck:
    """Hash the category's raw data and look up the hashes of its last accepted and last run."""
    params = apply_overrides(
        read_params(project), category_overrides(spec.name, spec.source, spec.path) + list(spec.overrides)
    )
    data_path = Path(str(lookup(params, "data.path", "")))
    current = tree_hash(data_path if data_path.is_absolute() else project / data_path)
    runs = ProjectLayout(project).runs
    accepted = read_accepted(runs, promotion.check_category(spec.name))
    last = read_last_run(runs, spec.name)
    return DataCheck(spec.name, current, accepted.data_hash if accepted else None, last.get("data_hash"))


@flow(name="data-watch")
def data_watch(
    categories: list[CategorySpec] | None = None,
    project_dir: str = ".",
    deployment: str | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Start a retrain for every category whose raw data changed; {category: what happened}.

    Args:
        categories: the categories to watch (default: the one in the project's params.yaml).
        deployment: queue each retrain as a run of this deployment (e.g. ``"retrain/on-demand"``)
            so a GPU worker takes it; None runs it here as a subflow.
        options: extra ``retrain`` parameters (tolerance, remote, ...).
    """
    logger = get_run_logger()
    project = Path(project_dir).resolve()
    if not categories:
        categories = [CategorySpec(name=str(lookup(read_params(project), "data.category", "default")))]
    outcome: dict[str, str] = {}
    for spec in categories:
        check = check_data(project, spec)
        if not check.changed:
            logger.info("%s: raw data unchanged (sha256 %s); no retrain", spec.name, check.current[:12])
            outcome[spec.name] = "unchanged"
            continue
        logger.info(
            "%s: raw data changed (sha256 %s, accepted %s); retraining",
            spec.name,
            check.current[:12],
            (check.accepted or "none")[:12],
        )
        parameters = retrain_parameters(spec, str(project), options)
        if deployment:
            run = run_deployment(deployment, parameters=parameters, timeout=0, as_subflow=False)
            outcome[spec.name] = f"queued {run.id}"
        else:
            outcome[spec.name] = retrain(**parameters, return_state=True).name
    return outcome
