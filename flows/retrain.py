"""Retrain flows: ``retrain`` (one category) and ``retrain-all`` (fan-out over categories).

How a retrain keeps the accepted models safe
--------------------------------------------
DVC owns the stage graph and the cache; Prefect only decides *when* the pipeline runs, *where*
(which worker), and *whether its result is kept*. One ``retrain`` run:

1. ``prepare-workspace``  copies the project into a private staging workspace outside it (a
   git-less DVC repository sharing the project's DVC cache, see :mod:`flows.workspace`) and
   writes the category's parameters (``data.category``, ``data.source``, ``data.path`` and any
   ``a.b=value`` overrides) into the copy's ``params.yaml``. The raw data is snapshotted and
   hashed there.
2. ``stage-graph``        asks DVC for the graph (``dvc dag --dot``); nothing here lists stages.
3. ``validate-<stage>``   the gate: ``dvc repro convert_dataset`` prepares the data and runs the
   Great Expectations suite; a failed suite fails the stage, the flow stops, nothing trains.
4. ``repro-<stage>``      every other stage in DVC's topological order, one task each
   (``dvc repro --single-item``), retried with exponential back-off on transient failures.
   Unchanged stages are skipped or restored from DVC's run-cache, as with a plain ``dvc repro``.
5. ``judge-metrics``      compares ``reports/metrics.json`` with the run's baseline (the last
   accepted run, else the reports the project serves for the category; :mod:`flows.promotion`);
   a drop beyond ``tolerance`` fails the run, and the rule applied goes into the run record.
6. ``dvc-push-<remote>``  with a DVC remote (the ``remote`` parameter, else the project's default
   remote), pushes the run's outputs and run-cache *before* anything is promoted: other
   machines must be able to fetch whatever a promotion points to, so a remote that cannot be
   reached fails the run with nothing promoted (what it already uploaded is content-addressed
   and unreferenced, harmless).
7. ``promote``            only now does anything in the project change: the run's ``dvc.lock``,
   ``params.yaml``, metrics and published outputs replace ``runs/<category>/accepted/`` in one
   rename. If the run used the project's own ``params.yaml`` unchanged, the project workspace
   is updated too (its outputs, then its ``dvc.lock``), so ``dvc status`` there stays clean.
8. ``record-run``         always, whatever the outcome: ``runs/history/<run_id>.json`` (a
   :class:`diffad.artifacts.runs.RunRecord`), the run's validation report beside it, and a
   markdown artifact (outcome, metrics, deltas, rule, every validation check with its files).

Every failure before step 6 leaves the project byte-for-byte as it was: the pipeline only ever
wrote into the staging workspace, which is deleted at the end (``keep_workspace`` keeps it).
Alternatives considered: ``git worktree`` and ``dvc exp run --temp`` need a commit (they miss
uncommitted code and the git-ignored raw data) and ``dvc exp`` runs the whole pipeline as one
command, so a stage could no longer be a retried task of its own; snapshot-and-restore in place
leaves a window in which the project holds half-written outputs.

Run without a server (Prefect starts a temporary local API)::

    python -m flows.retrain --category fabric
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prefect import flow, get_client, get_run_logger, runtime
from prefect.deployments import run_deployment
from prefect.tasks import exponential_backoff
from pydantic import BaseModel, Field

from diffad import registry
from diffad.artifacts.layout import (
    METRICS_FILE,
    MODELS,
    REPORTS,
    VALIDATION_FILE,
    ProjectLayout,
    RunsDir,
    ValidationDir,
)
from diffad.artifacts.records import ValidationResult, copy_validation, write_json
from diffad.artifacts.runs import RunRecord, write_accepted_info
from diffad.core.errors import ConfigError
from flows import promotion, tasks
from flows.dvc_cli import ancestors, default_remote, topological_order
from flows.promotion import DEFAULT_KEYS
from flows.report import render_report
from flows.workspace import apply_overrides, category_overrides, lookup, read_params, remove_path

REGISTRY_ENV = "DIFFAD_REGISTRY"  # a worker's default model registry (git URL)
WORK_ROOT = Path(tempfile.gettempdir()) / "diffad-retrain"  # default parent of staging workspaces


class CategorySpec(BaseModel):
    """One category to retrain: its name, where its raw data is, and extra parameter overrides."""

    name: str = Field(description="data.category, also the folder name under runs/")
    source: str | None = Field(default=None, description="data.source: synthetic | mvtec | folder")
    path: str | None = Field(default=None, description="data.path: the raw data folder")
    overrides: list[str] = Field(default_factory=list, description="extra KEY=VALUE parameter overrides")


def retrain_parameters(
    spec: CategorySpec, project_dir: str, options: dict[str, Any] | None
) -> dict[str, Any]:
    """Parameters of the ``retrain`` flow for one category (``options``: shared extras, e.g. tolerance)."""
    params = {
        "project_dir": project_dir,
        "category": spec.name,
        "source": spec.source,
        "data_path": spec.path,
        "overrides": list(spec.overrides),
    }
    return {**params, **(options or {})}


@flow(name="retrain")
def retrain(
    project_dir: str = ".",
    category: str | None = None,
    source: str | None = None,
    data_path: str | None = None,
    overrides: list[str] | None = None,
    tolerance: float = 0.02,
    compare: list[str] | None = None,
    validation_stage: str = "convert_dataset",
    validation_report: str = VALIDATION_FILE,
    metrics_file: str = METRICS_FILE,
    publish: list[str] | None = None,
    remote: str | None = None,
    registry: str | None = None,
    retries: int = 2,
    retry_delay_s: float = 30.0,
    work_dir: str | None = None,
    keep_workspace: bool = False,
) -> dict[str, Any]:
    """Validate, run the DVC pipeline in a staging workspace, promote only a run that is no worse.

    Args:
        project_dir: the DVC project (``prefect.yaml``'s pull step makes it the working directory).
        category, source, data_path: ``data.category`` / ``data.source`` / ``data.path``; None keeps
            the project's ``params.yaml`` value.
        overrides: more ``a.b=value`` parameter overrides (``dvc exp run -S`` syntax).
        tolerance: largest allowed drop of a compared metric against the baseline (the last
            accepted run, else the reports the project serves for the category).
        compare: metric keys compared (default image_auroc, pixel_auroc, aupro; higher is better).
        validation_stage, validation_report: the DVC stage that validates the data and its report.
        metrics_file: the metrics the decision is based on.
        publish: output prefixes copied to ``runs/<category>/accepted/`` (default reports, models).
        remote: a DVC remote: fetch its run-cache first, push outputs + run-cache on acceptance
            (before promoting); None: the project's default remote if it has one; "": none.
        registry: git URL of the model registry the hosts share (:mod:`diffad.registry`; None:
            ``$DIFFAD_REGISTRY`` of the worker, "": none): the
            run is judged against its ``prod`` model and, once accepted, published there as the
            next ``<category>@vN`` with stage ``prod`` (a run that lost a race with another
            host's promotion of the category ends ``not_promoted``); run records go there too.
        retries, retry_delay_s: retries of transient stage failures, first delay (doubles each time).
        work_dir: parent of the staging workspace (default: the system temp folder).
        keep_workspace: keep the staging workspace after the run (debugging).

    Returns:
        {"run_id", "category", "accepted", "metrics", "deltas", "history"}; a failed validation,
        stage or metrics comparison fails the flow run (after its run record is written: every
        run has one, with its outcome, reason and validation report).
    """
    logger = get_run_logger()
    project = Path(project_dir).resolve()
    all_overrides = category_overrides(category, source, data_path) + list(overrides or ())
    base = read_params(project)
    params = apply_overrides(base, all_overrides)
    name = promotion.check_category(str(category or lookup(params, "data.category") or "default"))
    flow_run_id = runtime.flow_run.id
    run_id = promotion.new_run_id(name, flow_run_id)
    workspace = (Path(work_dir) if work_dir else WORK_ROOT).resolve() / run_id
    policy = {"retries": retries, "retry_delay_seconds": exponential_backoff(retry_delay_s)(retries) or 0}
    stage_task = tasks.run_stage.with_options(**policy)
    keys = list(compare or DEFAULT_KEYS)

    clone = workspace.with_name(f"{run_id}.registry")  # this run's copy of the registry
    expected, registry_baseline = None, None
    state, outcome, reason, data_hash = "Failed", "failed", None, None
    metrics, decision, validation, outputs, order = None, None, None, {}, []
    feedback = None  # what the run did with the reviewers' verdicts (diffad.feedback.effect)
    try:
        ws = tasks.prepare_workspace(project, workspace, params, lookup(params, "data.path"))
        data_hash = ws.data_hash
        remote = default_remote(project) if remote is None else remote or None
        if remote:
            tasks.sync_remote.with_options(**policy)(workspace, "fetch", remote)
        registry = os.environ.get(REGISTRY_ENV, "").strip() if registry is None else registry
        if registry:
            expected, registry_baseline = tasks.read_registry(registry, clone, name)
        graph = tasks.read_stage_graph(workspace)
        order = topological_order(graph)
        if validation_stage not in graph:
            raise ConfigError(
                f"validation_stage: {validation_stage!r} is not a stage of {project / 'dvc.yaml'}"
            )
        validation = tasks.validate_data.with_options(**policy)(
            workspace, validation_stage, validation_report
        )
        done = ancestors(graph, validation_stage) | {validation_stage}
        for stage in order:
            if stage not in done:
                stage_task(workspace, stage, pull=bool(remote))
        metrics, decision = tasks.judge_metrics(
            workspace, project, name, metrics_file, tolerance, keys, registry_baseline
        )
        feedback = _feedback_effect(workspace, name)
        if not decision.accepted:
            reason = "metrics fell below the accepted run: " + "; ".join(decision.regressions)
            raise tasks.MetricsRegressed(reason)
        run = {
            "run_id": run_id,
            "category": name,
            "flow_run_id": flow_run_id,
            "data_hash": data_hash,
            "overrides": all_overrides,
            "stages": order,
        }
        if remote:
            tasks.sync_remote.with_options(**policy)(workspace, "push", remote)
        if registry:  # the commit point: from here on every host serves this run
            tasks.publish_registry(
                registry, clone, name, _registered_files(workspace, metrics_file, run), expected, run_id
            )
        outputs = tasks.promote(
            workspace,
            project,
            name,
            metrics_file,
            list(publish or (REPORTS, MODELS)),
            run,
            update_project_workspace=params == base,
        )
        state = "Completed"
    except BaseException as exc:
        reason = reason or f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        outcome = _outcome(exc)
        raise
    else:
        outcome = "accepted"
    finally:
        runs = ProjectLayout(project).runs
        kept = _keep_validation(
            ValidationDir((workspace / validation_report).parent), runs.validation(run_id)
        )
        validation = validation or kept
        record = RunRecord(
            run_id=run_id,
            category=name,
            outcome=outcome,
            state=state,
            reason=reason,
            metrics=metrics,
            baseline=decision.baseline if decision else None,
            rule=decision.rule if decision else None,
            deltas=decision.deltas if decision else {},
            regressions=decision.regressions if decision else [],
            validation=validation.digest() if validation else None,
            validation_report=(
                runs.validation(run_id).report.relative_to(project).as_posix() if kept else None
            ),
            data_hash=data_hash,
            flow_run_id=flow_run_id,
        )
        markdown = render_report(
            record=record,
            tolerance=tolerance,
            validation=validation,
            outputs=outputs,
            stages=order,
            feedback=feedback,
        )
        try:
            if feedback is not None:
                write_json(runs.feedback(run_id), feedback)
            history = tasks.record_run(project, record, markdown)
            if registry:
                _share_record(registry, clone, ProjectLayout(project).runs, run_id)
        except Exception:  # never hide the run's own outcome behind a bookkeeping error
            logger.exception("could not record run %s", run_id)
            history = None
        remove_path(clone)
        if not keep_workspace:
            remove_path(workspace)
    logger.info("run %s accepted; history %s", run_id, history)
    return {
        "run_id": run_id,
        "category": name,
        "accepted": True,
        "metrics": metrics,
        "deltas": decision.deltas,
        "history": history,
    }


def _feedback_effect(workspace: Path, category: str) -> dict | None:
    """The verdicts a run used and the false-alarm rate on the reviewed false alarms (never raises:
    bookkeeping must not fail a retrain)."""
    from diffad.feedback.effect import feedback_effect

    layout = ProjectLayout(workspace)
    try:
        return feedback_effect(layout.feedback.root, category, layout.bundle.root, layout.prepared)
    except Exception as exc:  # noqa: BLE001 - reported in the run's markdown instead
        get_run_logger().warning("feedback summary failed: %s", exc)
        return {"error": str(exc)}


def _registered_files(workspace: Path, metrics_file: str, run: dict[str, Any]) -> dict[str, Path]:
    """What the registry keeps of an accepted run (its outputs are in the DVC remote)."""
    info = workspace / ".registry-run.json"
    write_accepted_info(info, run)
    layout = ProjectLayout(workspace)
    return {"dvc.lock": layout.lock, "params.yaml": layout.params, "metrics.json": workspace / metrics_file,
            "run.json": info}  # fmt: skip


def _share_record(url: str, clone: Path, runs: RunsDir, run_id: str) -> None:
    """The run's record (and its validation report) into the registry, beside every host's."""
    names = [runs.record(run_id), *sorted(p for p in (runs.history / run_id).rglob("*") if p.is_file())]
    files = {path.relative_to(runs.root.parent).as_posix(): path for path in names if path.exists()}
    registry.record(url, clone, files, f"run {run_id}")


def _outcome(exc: BaseException) -> str:
    """The run record's outcome for a run that raised ``exc``."""
    if isinstance(exc, tasks.ValidationGateFailed):
        return "rejected"
    if isinstance(exc, tasks.MetricsRegressed | registry.PromotionLost):
        return "not_promoted"
    return "failed"


def _keep_validation(source: ValidationDir, target: ValidationDir) -> ValidationResult | None:
    """Copy the run's validation report beside its record (the workspace is deleted); None if it
    wrote none or it is unreadable (the record must not replace the run's own error)."""
    try:
        return copy_validation(source, target)
    except Exception:
        return None


def _wait_for_runs(
    flow_run_ids: dict[str, Any],
    poll_s: float,
    requeue: Callable[[str, int], Any] | None = None,
    crash_retries: int = 0,
) -> dict[str, str]:
    """Poll the API until every flow run is final; {category: state name}.

    A run that ends ``Crashed`` (its worker died: the server's automation marks a run whose
    heartbeats stopped, docs/orchestration.md) is queued again by ``requeue(name, attempt)``, up
    to ``crash_retries`` times, and whichever worker is free takes it. Nothing of the crashed run
    is visible: a run promotes only at its very end, in one push to the registry.
    """
    runs, attempts = dict(flow_run_ids), dict.fromkeys(flow_run_ids, 0)
    states: dict[str, str] = {}
    logger = get_run_logger()
    with get_client(sync_client=True) as client:
        while len(states) < len(runs):
            for name, run_id in runs.items():
                state = None if name in states else client.read_flow_run(run_id).state
                if state is None or not state.is_final():
                    continue
                if state.is_crashed() and requeue is not None and attempts[name] < crash_retries:
                    attempts[name] += 1
                    runs[name] = requeue(name, attempts[name])
                    logger.warning("%s: run %s crashed (%s); queued again as %s", name, run_id,
                                   state.message, runs[name])  # fmt: skip
                else:
                    states[name] = state.name
            if len(states) < len(runs):
                time.sleep(poll_s)
    return states


@flow(name="retrain-all")
def retrain_all(
    categories: list[CategorySpec],
    project_dir: str = ".",
    deployment: str | None = None,
    options: dict[str, Any] | None = None,
    poll_s: float = 10.0,
    crash_retries: int = 1,
) -> dict[str, str]:
    """Retrain several categories; fails (after all finished) if any of them failed.

    With ``deployment`` (e.g. ``"retrain/on-demand"``) each category becomes its own flow run of
    that deployment, queued at once, so every worker on the pool takes a share, and a run whose
    worker died (``Crashed``) is queued again up to ``crash_retries`` times; otherwise the
    categories run one after another in this process. ``options`` are passed to every ``retrain``.
    """
    logger = get_run_logger()
    if deployment:
        parent = runtime.flow_run.id or uuid.uuid4().hex
        specs = {spec.name: spec for spec in categories}

        def queue(name: str, attempt: int) -> Any:
            return run_deployment(
                deployment,
                parameters=retrain_parameters(specs[name], project_dir, options),
                timeout=0,
                flow_run_name=f"retrain-{name}" + (f"-again{attempt}" if attempt else ""),
                # a client retry of the same request (a slow server) must not queue a second run
                idempotency_key=f"{parent}-{name}-{attempt}",
            ).id

        runs = {name: queue(name, 0) for name in specs}
        logger.info("queued %d run(s) of %s: %s", len(runs), deployment, runs)
        states = _wait_for_runs(runs, poll_s, queue, crash_retries)
    else:
        states = {}
        for spec in categories:
            state = retrain(**retrain_parameters(spec, project_dir, options), return_state=True)
            states[spec.name] = state.name
    failed = sorted(name for name, state in states.items() if state != "Completed")
    if failed:
        raise RuntimeError(f"retrain failed for {', '.join(failed)}: {states}")
    return states


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m flows.retrain``: one retrain in this process (Prefect's local API if no server)."""
    parser = argparse.ArgumentParser(description="Retrain one category through the DVC pipeline.")
    parser.add_argument("--project-dir", default=".")
    parser.add_argument("--category")
    parser.add_argument("--source")
    parser.add_argument("--data-path")
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--tolerance", type=float, default=0.02)
    parser.add_argument("--remote", help="DVC remote (default: the project's default remote)")
    parser.add_argument("--registry", help="git URL of the model registry the hosts share")
    args = parser.parse_args(argv)
    retrain(
        project_dir=args.project_dir,
        category=args.category,
        source=args.source,
        data_path=args.data_path,
        overrides=args.overrides,
        tolerance=args.tolerance,
        remote=args.remote,
        registry=args.registry,
    )


if __name__ == "__main__":
    main()
