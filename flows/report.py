"""The markdown summary of one retrain (published as a Prefect artifact, also useful in a terminal)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from diffad.artifacts.records import LISTED_FILES, Metrics, ValidationResult
from diffad.artifacts.runs import OUTCOME_TEXT, RunRecord
from flows.promotion import DEFAULT_KEYS


def _fmt(value: Any, signed: bool = False) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def metrics_table(metrics: Metrics, deltas: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One row per method, ``value (Δ vs baseline)`` per metric; compared metrics first."""
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


def validation_lines(report: ValidationResult | None, listed: int = LISTED_FILES) -> list[str]:
    """Every check by name with its observed value; for a failure, its first ``listed`` files."""
    if report is None:
        return ["No validation report was written."]
    verdict = "passed" if report.success else "**failed**"
    lines = [
        f"Data validation {verdict}: {len(report.checks) - len(report.failed)} of {len(report.checks)} "
        f"checks met, {report.rows} rows.",
        "",
        "| check | result | observed | offending files |",
        "|---|---|---|---|",
    ]
    for check in report.checks:  # failures come first (the writer orders them so)
        files = check.offending_files[:listed]
        more = check.offending_count - len(files)
        shown = ", ".join(f"`{f}`" for f in files) + (f" … and {more} more" if more > 0 else "")
        if check.error:
            shown = f"could not evaluate: {check.error}"
        result = "ok" if check.success else "**FAIL**"
        observed = _cell(check.observed)[:80]
        lines.append(f"| `{check.name}`: {_cell(check.description)} | {result} | {observed} | {shown} |")
    return lines


def render_report(
    *,
    record: RunRecord,
    tolerance: float,
    validation: ValidationResult | None,
    outputs: Mapping[str, str],
    stages: Sequence[str],
    feedback: Mapping[str, Any] | None = None,
) -> str:
    """The whole markdown document for one run."""
    lines = [
        f"# Retrain `{record.category}`: {OUTCOME_TEXT[record.outcome]}",
        "",
        f"Run `{record.run_id}`, finished {record.finished} ({record.state}).",
    ]
    if record.reason:
        lines += ["", f"> {record.reason}"]
    lines += ["", "## Metrics", ""]
    if record.metrics:
        lines += metrics_table(record.metrics, record.deltas)
        if record.baseline is not None:
            lines += ["", f"In brackets: change against the baseline, {record.baseline.description}."]
        if record.rule:
            lines += ["", f"Rule: {record.rule} (tolerance {tolerance:g})."]
        if record.regressions:
            lines += ["", "Regressions:"] + [f"- {item}" for item in record.regressions]
    else:
        lines.append("No metrics (the pipeline did not get that far).")
    if feedback is not None:  # the run got as far as evaluate: what it made of the verdicts
        from diffad.feedback.effect import effect_lines

        error = feedback.get("error")
        lines += [
            "",
            "## Reviewers' feedback",
            "",
            *([f"Not summarised: {error}"] if error else effect_lines(dict(feedback))),
        ]
    lines += ["", "## Data validation", "", *validation_lines(validation)]
    if record.validation_report:
        lines += ["", f"Full report: `{record.validation_report}` in the project."]
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
