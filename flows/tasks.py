"""Prefect tasks of a retrain: each wraps one step of :mod:`flows.workspace`, :mod:`flows.dvc_cli`
or :mod:`flows.promotion`, so the Prefect UI shows one task run per step and per DVC stage.

Retries: :func:`run_stage` and :func:`validate_data` retry only what :func:`flows.dvc_cli.is_transient`
accepts (Prefect's ``retry_condition_fn``); the number of retries and the back-off are set by the
flow with ``Task.with_options``. A failed data validation raises :class:`ValidationGateFailed`,
which is never retried: the data will not get better by itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from diffad import registry
from diffad.artifacts.layout import ProjectLayout, ValidationDir
from diffad.artifacts.records import LISTED_FILES, ValidationResult, read_validation
from diffad.artifacts.runs import Baseline, RunRecord, write_run_record
from diffad.core.errors import ArtifactError, ValidationFailed
from flows import promotion
from flows.dvc_cli import is_transient, run_dvc, stage_graph
from flows.workspace import create_workspace, dvc_config_local, lock_outputs, remove_path, tree_hash


class ValidationGateFailed(ValidationFailed):
    """The new data failed validation; nothing was trained and nothing was promoted."""


class MetricsRegressed(RuntimeError):
    """The new run's metrics fell below the accepted ones by more than the tolerance."""


@dataclass(frozen=True)
class Workspace:
    """A staging workspace prepared for one run."""

    path: Path  # the git-less DVC copy the pipeline runs in
    data_hash: str | None  # tree_hash of the raw data snapshot (None: no data.path)


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only :class:`flows.dvc_cli.TransientStageError`."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # an unreadable state is not worth a retry
        return False
    return is_transient(exc)


@task(name="prepare-workspace", task_run_name="prepare-workspace", cache_policy=NO_CACHE)
def prepare_workspace(
    project: Path, workspace: Path, params: dict[str, Any], data_path: str | None
) -> Workspace:
    """Copy the project into a staging workspace with ``params`` (see :mod:`flows.workspace`)."""
    create_workspace(project, workspace, params, data_path)
    if not data_path:
        return Workspace(workspace, None)
    snapshot = Path(data_path) if Path(data_path).is_absolute() else workspace / data_path
    data_hash = tree_hash(snapshot)
    get_run_logger().info("staging workspace %s, raw data %s sha256 %s", workspace, data_path, data_hash[:12])
    return Workspace(workspace, data_hash)


@task(name="stage-graph", task_run_name="stage-graph", cache_policy=NO_CACHE)
def read_stage_graph(workspace: Path) -> dict[str, set[str]]:
    """The stage graph as DVC reports it (``dvc dag --dot``): {stage: stages it depends on}."""
    graph = stage_graph(workspace)
    get_run_logger().info("DVC stage graph: %s", {k: sorted(v) for k, v in graph.items()})
    return graph


def gate_failure(result: ValidationResult, report: str, listed: int = LISTED_FILES) -> ValidationGateFailed:
    """The gate's exception, naming every failed check and its first offending files."""
    parts = []
    for check in result.failed:
        files = check.offending_files[:listed]
        more = check.offending_count - len(files)
        where = f": {', '.join(files)}" + (f" (+{more} more)" if more > 0 else "") if files else ""
        parts.append(f"{check.name}{where}")
    return ValidationGateFailed(f"data validation failed ({report}): {'; '.join(parts)}; nothing was trained")


@task(
    name="validate-data",
    task_run_name="validate-{stage}",
    cache_policy=NO_CACHE,
    retry_condition_fn=retry_if_transient,
)
def validate_data(workspace: Path, stage: str, report: str) -> ValidationResult:
    """Run the validating stage (and anything it depends on); return its report or stop the run.

    ``report`` is the validation report file (``reports/validation/validation.json``), written by
    the stage through :mod:`diffad.artifacts`. It is removed first, so a report left from earlier
    can never pass for this run.
    """
    folder = ValidationDir((workspace / report).parent)
    remove_path(folder.report)
    logger = get_run_logger()
    try:
        run_dvc(["repro", stage], workspace, logger)
    except Exception:
        if folder.report.exists():
            result = read_validation(folder)
            if not result.success:
                raise gate_failure(result, report) from None
        raise
    if not folder.report.exists():
        raise ArtifactError(f"{report}: stage {stage!r} wrote no validation report")
    result = read_validation(folder)
    if not result.success:
        raise gate_failure(result, report)
    logger.info(
        "data validation passed: %d checks (%s)", len(result.checks), ", ".join(c.name for c in result.checks)
    )
    return result


@task(
    name="dvc-repro",
    task_run_name="repro-{stage}",
    cache_policy=NO_CACHE,
    retry_condition_fn=retry_if_transient,
)
def run_stage(workspace: Path, stage: str, pull: bool = False) -> None:
    """``dvc repro --single-item <stage>``: DVC skips it, restores it from the run-cache, or runs it.

    ``pull``: also download the outputs of a run-cache entry from the workspace's default remote.
    DVC restores a stage from its run-cache only when the outputs are in the local cache, and
    ``dvc fetch --run-cache`` before the run cannot know them: an entry is matched by the hashes of
    the stage's dependencies, which exist only once the stages upstream have run."""
    logger = get_run_logger()
    run_dvc(["repro", "--single-item", *(["--pull"] if pull else []), stage], workspace, logger)
    missing = [out for out in lock_outputs(workspace, stage) if not (workspace / out).exists()]
    if missing:  # restored from a run-cache entry, but an uncached output (`cache: false`) is not in it
        logger.info("%s: %s not restored from the run-cache; running the stage", stage, ", ".join(missing))
        run_dvc(["repro", "--single-item", "--force", stage], workspace, logger)


@task(name="judge-metrics", task_run_name="judge-metrics", cache_policy=NO_CACHE)
def judge_metrics(
    workspace: Path,
    project: Path,
    category: str,
    metrics_file: str,
    tolerance: float,
    keys: Sequence[str],
    baseline: Baseline | None = None,
) -> tuple[promotion.Metrics, promotion.Decision]:
    """Compare the run's metrics with ``baseline`` (the registry's prod model), else
    :func:`flows.promotion.baseline_for`."""
    metrics = promotion.read_metrics(workspace / metrics_file)
    baseline = baseline or promotion.baseline_for(project, category)
    decision = promotion.compare_metrics(metrics, baseline, tolerance, keys)
    get_run_logger().info(
        "accepted=%s rule: %s; deltas=%s regressions=%s",
        decision.accepted,
        decision.rule,
        decision.deltas,
        decision.regressions,
    )
    return metrics, decision


@task(name="promote", task_run_name="promote", cache_policy=NO_CACHE)
def promote(
    workspace: Path,
    project: Path,
    category: str,
    metrics_file: str,
    publish: Sequence[str],
    run: dict[str, Any],
    update_project_workspace: bool,
) -> dict[str, str]:
    """Publish the accepted run; returns {output path: where it now lives}."""
    target, published = promotion.publish_accepted(project, category, workspace, metrics_file, publish, run)
    logger = get_run_logger()
    logger.info("promoted to %s", target)
    if update_project_workspace:
        replaced = promotion.update_project(project, workspace)
        logger.info("project workspace updated: dvc.lock and %d output(s)", len(replaced))
    return {out: str(target / out) for out in published}


@task(
    name="dvc-remote",
    task_run_name="dvc-{action}-{remote}",
    cache_policy=NO_CACHE,
    retry_condition_fn=retry_if_transient,
)
def sync_remote(workspace: Path, action: str, remote: str) -> None:
    """``dvc fetch`` (before: reuse other machines' results) or ``dvc push`` (after acceptance),
    outputs and run-cache, so that workers on different machines share one cache. Before a fetch
    the remote becomes the workspace's default, from which ``run_stage(pull=True)`` downloads."""
    if action == "fetch":
        dvc_config_local(workspace, [("core.remote", remote)])
    run_dvc([action, "--run-cache", "-r", remote], workspace, get_run_logger())


@task(name="registry-read", task_run_name="registry-read", cache_policy=NO_CACHE)
def read_registry(url: str, clone: Path, category: str) -> tuple[int | None, Baseline | None]:
    """The registry's ``prod`` version of ``category`` and its metrics as the run's baseline."""
    registry.sync(url, clone)
    version = registry.prod_version(clone, category)
    if version is None:
        get_run_logger().info("registry %s: no prod version of %s yet", url, category)
        return None, None
    files = registry.accepted_files(version, clone)
    info = json.loads(files.get("run.json", b"{}"))
    metrics = json.loads(files["metrics.json"])
    get_run_logger().info("registry %s: prod of %s is %s", url, category, version.tag)
    return version.number, Baseline(
        "registry", f"{version.tag} (prod in the registry)", info.get("run_id"), metrics
    )


@task(name="registry-publish", task_run_name="registry-publish", cache_policy=NO_CACHE)
def publish_registry(
    url: str, clone: Path, category: str, files: dict[str, Path], expected: int | None, run_id: str
) -> str:
    """Register the accepted run as the next version and assign it ``prod`` (one atomic push);
    :class:`diffad.registry.PromotionLost` if another host promoted the category first."""
    version = registry.publish(url, clone, category, files, expected, f"{category}: promote run {run_id}")
    get_run_logger().info("registry %s: %s is prod", url, version.tag)
    return version.tag


@task(name="record-run", task_run_name="record-run", cache_policy=NO_CACHE)
def record_run(project: Path, record: RunRecord, markdown: str) -> str:
    """Write the run record and publish the markdown artifact; returns the record's path."""
    path = write_run_record(ProjectLayout(project).runs, record)
    key = "retrain-" + "".join(c if c.isalnum() else "-" for c in record.category.lower()).strip("-")
    create_markdown_artifact(
        markdown=markdown, key=key, description=f"retrain {record.run_id}: {record.outcome}"
    )
    return str(path)
