"""The markdown summary of one retrain (published as a Prefect artifact, also useful in a terminal)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flows.promotion import DEFAULT_KEYS, Decision, Metrics

MAX_FAILURES = 12  # failing expectations listed in the validation section


def _fmt(value: Any, signed: bool = False) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def metrics_table(metrics: Metrics, deltas: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One row per method, ``value (Δ vs accepted)`` per metric; compared metrics first."""
    keys = [k for k in DEFAULT_KEYS if any(k in m for m in metrics.values())]
    keys += sorted({k for m in metrics.values() for k in m} - set(keys))
    lines = ["| method | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for method, values in metrics.items():
        cells = []
        for key in keys:
            delta = (deltas.get(method) or {}).get(key)
            cells.append(
                _fmt(values.get(key)) + (f" ({_fmt(delta, signed=True)})" if delta is not None else "")
            )
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def validation_lines(report: Mapping[str, Any] | None) -> list[str]:
    """``validation.json`` as a short verdict plus the failing checks.

    Reads diffad's report (``{"success", "checks": [{"name", "description", "success",
    "offending_count", ...}]}``) and plain Great Expectations style results (``"results"``,
    ``"expectation"``/``"expectation_type"``, ``kwargs.column``) alike.
    """
    if report is None:
        return ["No validation report was written."]
    checks = report.get("checks") or report.get("results") or []
    failed = [c for c in checks if isinstance(c, Mapping) and not c.get("success", True)]
    verdict = "passed" if report.get("success") else "**failed**"
    lines = [f"Data validation {verdict} ({len(checks) - len(failed)}/{len(checks)} checks met)."]
    for check in failed[:MAX_FAILURES]:
        name = check.get("name") or check.get("expectation") or check.get("expectation_type") or "check"
        kwargs = check.get("kwargs") if isinstance(check.get("kwargs"), Mapping) else {}
        column = check.get("column") or kwargs.get("column")
        line = f"- `{name}`" + (f" on `{column}`" if column else "")
        if check.get("description"):
            line += f": {check['description']}"
        if check.get("offending_count"):
            line += f" ({check['offending_count']} offending rows)"
        elif check.get("observed") is not None:
            line += f" (observed {check['observed']})"
        lines.append(line)
    if len(failed) > MAX_FAILURES:
        lines.append(f"- ... and {len(failed) - MAX_FAILURES} more")
    return lines


def render_report(
    *,
    run_id: str,
    category: str,
    state: str,
    reason: str | None,
    metrics: Metrics | None,
    decision: Decision | None,
    tolerance: float,
    validation: Mapping[str, Any] | None,
    outputs: Mapping[str, str],
    stages: Sequence[str],
) -> str:
    """The whole markdown document for one run."""
    verdict = "accepted" if decision and decision.accepted and state == "Completed" else "not promoted"
    lines = [f"# Retrain `{category}`: {state}, {verdict}", "", f"Run `{run_id}`."]
    if reason:
        lines += ["", f"> {reason}"]
    lines += ["", "## Metrics", ""]
    if metrics:
        lines += metrics_table(metrics, decision.deltas if decision else {})
        lines += ["", f"In brackets: change against the last accepted run (tolerance {tolerance:g})."]
        if decision and decision.regressions:
            lines += ["", "Regressions:"] + [f"- {item}" for item in decision.regressions]
        elif decision and not decision.deltas:
            lines += ["", "No earlier accepted run to compare with."]
    else:
        lines.append("No metrics (the pipeline did not get that far).")
    lines += ["", "## Data validation", "", *validation_lines(validation)]
    if outputs:
        lines += ["", "## Outputs", ""]
        for label in ("heatmaps", "bundle"):
            hits = [path for name, path in outputs.items() if label in name]
            if hits:
                lines.append(f"- {label}: " + ", ".join(f"`{p}`" for p in hits))
        lines += [f"- `{name}`: `{path}`" for name, path in outputs.items()]
    if stages:
        lines += ["", "Stages (from `dvc dag`): " + " → ".join(f"`{s}`" for s in stages)]
    return "\n".join(lines) + "\n"
