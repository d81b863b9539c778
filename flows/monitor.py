"""Monitor production: drift of the served model's scores and new verdicts trigger a retrain.

For each category :func:`diffad.monitoring.check.check_category` compares the recent window of
``data/monitoring/<category>/scores.jsonl`` (what ``diffad predict`` decided) with the served
bundle's calibration scores (share above threshold, two-sample KS test, median shift; limits in
params.yaml ``monitoring``) and counts the verdicts that arrived since the model was served. The
flow writes a markdown artifact ``monitor-<category>`` with the statistics and, when drift passes
the limits or ``monitoring.new_verdicts`` verdicts accumulated, queues a run of the retrain
deployment (``retrain/on-demand``), which uses the feedback and goes through the same validation
gate and promotion rule as every other retrain.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.deployments import run_deployment

from diffad.config import params_from_dict
from diffad.core.command import run_command
from diffad.monitoring.check import MonitorCheck, check_category
from diffad.registry import local_clone
from diffad.registry import sync as registry_sync
from flows.retrain import CategorySpec, retrain_parameters
from flows.workspace import lookup, read_params

RETRAIN_DEPLOYMENT = "retrain/on-demand"


def render_check(check: MonitorCheck, triggered: str) -> str:
    """The markdown of one category's decision."""
    lines = [f"# Monitor `{check.category}`: {'retrain' if check.retrain else 'no retrain'}", ""]
    lines += [f"Served bundle `{check.bundle_id}` since {check.served_since}, method `{check.method}`."]
    if check.note:
        lines += ["", f"> {check.note}"]
    d = check.drift
    if d is not None and d.enough:
        lines += [
            "",
            "| statistic | production (window) | calibration | limit |",
            "|---|---|---|---|",
            f"| images | {d.n} | {d.n_calibration} | at least the window's min_images |",
            f"| share over threshold (Fisher p) | {d.alarm_share:.3f} (p = {d.alarm_share_p_value:.2g}) | "
            f"{d.calibration_alarm_share:.3f} | excess ≤ limit or p ≥ limit |",
            f"| KS statistic (p-value) | {d.ks_statistic:.3f} (p = {d.p_value:.2g}) | | with the median |",
            f"| median (shift in calibration std) | {d.median:.4g} ({d.median_shift:+.2f}) | "
            f"{d.calibration_median:.4g} | |shift| ≤ limit or KS p ≥ limit |",
            "",
            d.summary(),
        ]
    lines += ["", f"New verdicts since the served model: {check.new_verdicts}."]
    if check.reasons:
        lines += ["", "Retrain because:", *[f"- {r}" for r in check.reasons]]
    if triggered:
        lines += ["", triggered]
    return "\n".join(lines) + "\n"


@flow(name="monitor")
def monitor(
    categories: list[CategorySpec] | None = None,
    project_dir: str = ".",
    deployment: str | None = RETRAIN_DEPLOYMENT,
    method: str | None = None,
    options: dict[str, Any] | None = None,
    registry: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Check every category; {category: {"retrain", "reasons", "drift", "triggered"}}.

    Args:
        deployment: the retrain deployment to queue when a category needs one; None only reports.
        method: the method whose scores are watched (default: the one the log used last).
        options: extra ``retrain`` parameters (tolerance, remote, ...).
        registry: the model registry's git URL, shared by the hosts: its ``prod`` model is the
            served one (diffad.inference.serving); None: this project's promoted runs.
    """
    logger = get_run_logger()
    project = Path(project_dir).resolve()
    raw = read_params(project)
    cfg = params_from_dict(raw, source=str(project / "params.yaml")).monitoring
    if not categories:
        categories = [CategorySpec(name=str(lookup(raw, "data.category", "default")))]
    clone = registry_sync(registry, local_clone(project)) if registry else None
    outcome: dict[str, dict[str, Any]] = {}
    for spec in categories:
        check = check_category(project, spec.name, cfg, method, registry_clone=clone)
        triggered = ""
        if check.retrain and deployment:
            run = run_deployment(
                deployment,
                parameters=retrain_parameters(spec, str(project), options),
                timeout=0,
                as_subflow=False,
            )
            triggered = f"Queued `{deployment}` run {run.id}."
        logger.info(
            "%s: %s", spec.name, "; ".join(check.reasons) or check.note or "no drift, no new verdicts"
        )
        create_markdown_artifact(
            markdown=render_check(check, triggered),
            key="monitor-" + "".join(c if c.isalnum() else "-" for c in spec.name.lower()).strip("-"),
            description=f"monitor {spec.name}: {'retrain' if check.retrain else 'ok'}",
        )
        outcome[spec.name] = {
            "retrain": check.retrain,
            "reasons": list(check.reasons),
            "drift": None if check.drift is None else check.drift.to_dict(),
            "new_verdicts": check.new_verdicts,
            "summary": check.note or (check.drift.summary() if check.drift else ""),
            "triggered": triggered,
        }
    return outcome


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--category", action="append", help="repeat for several (default: params.yaml)")
    parser.add_argument("--project-dir", default=".")
    parser.add_argument("--deployment", default=RETRAIN_DEPLOYMENT, help="'' to only report")
    parser.add_argument("--method", default=None)
    args = parser.parse_args(argv)
    specs = [CategorySpec(name=c) for c in args.category] if args.category else None
    result = monitor(specs, args.project_dir, args.deployment or None, args.method)
    for name, decision in result.items():
        why = "; ".join(decision["reasons"]) or decision["summary"]
        print(f"{name}: {'RETRAIN' if decision['retrain'] else 'no retrain'}: {why}")


if __name__ == "__main__":
    run_command(main)  # a bad log row: one line naming file:line, no traceback
