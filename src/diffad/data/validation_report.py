"""The data validation report: each check's outcome, as text for the log, JSON for the artifact
contract (``validation.json`` and the flat ``summary.json`` for ``dvc metrics``) and a small HTML
page (:mod:`diffad.data.validation` runs the suite that fills it)."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from diffad.artifacts.layout import ValidationDir
from diffad.artifacts.records import validation_from_dict, write_validation

MAX_LISTED = 50  # offending rows kept per check in the JSON report


@dataclass(frozen=True)
class Check:
    """One expectation's outcome."""

    name: str
    description: str
    success: bool
    observed: Any  # GX's observed value, or the count of offending rows
    offending: tuple[dict[str, Any], ...]  # {"path", "value"} of offending rows (at most MAX_LISTED)
    offending_count: int
    error: str | None = None  # set when GX could not evaluate the expectation

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "success": self.success,
            "observed": _plain(self.observed),
            "offending_count": self.offending_count,
            "offending": [_plain(o) for o in self.offending],
            "error": self.error,
        }


@dataclass(frozen=True)
class ValidationReport:
    """The suite's result over one manifest."""

    manifest: str
    rows: int
    checks: tuple[Check, ...]

    @property
    def success(self) -> bool:
        return all(check.success for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.success]

    def summary(self, listed: int = 10) -> str:
        """Readable text: failures first, each naming up to ``listed`` offending rows by path."""
        status = "passed" if self.success else f"FAILED ({len(self.failed)} of {len(self.checks)} checks)"
        lines = [f"data validation {status}: {self.manifest}, {self.rows} rows"]
        for check in self.failed:
            lines.append(f"  FAIL {check.name}: {check.description}")
            if check.error:
                lines.append(f"       could not evaluate: {check.error}")
            elif check.offending_count:
                lines.append(f"       {check.offending_count} offending row(s):")
                lines += [f"         {o['path']}  ({o['value']})" for o in check.offending[:listed]]
                if check.offending_count > listed:
                    lines.append(f"         ... and {check.offending_count - listed} more")
            else:
                lines.append(f"       observed: {_plain(check.observed)}")
        passed = [check.name for check in self.checks if check.success]
        if passed:
            lines.append(f"  ok   {', '.join(passed)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: overall result, then every check (failures first)."""
        ordered = self.failed + [check for check in self.checks if check.success]
        return {
            "success": self.success,
            "checks_failed": len(self.failed),
            "checks_total": len(self.checks),
            "rows": self.rows,
            "manifest": self.manifest,
            "checks": [check.to_dict() for check in ordered],
        }

    def write(self, report_dir: Path) -> None:
        """The report through the artifact contract: ``validation.json``, a flat ``summary.json``
        for ``dvc metrics`` and a small self-contained ``validation.html`` under ``report_dir``."""
        data = self.to_dict()
        write_validation(ValidationDir(Path(report_dir)), validation_from_dict(data), _html(data))


def _plain(value: Any) -> Any:
    """JSON-safe copy: numpy scalars -> Python, NaN -> None, containers recursively."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _html(data: dict[str, Any]) -> str:
    """A dependency-free HTML table of the checks (GX data docs need a file-backed context)."""
    rows = []
    for check in data["checks"]:
        listed = "<br>".join(html.escape(f"{o['path']} ({o['value']})") for o in check["offending"][:20])
        status = "ok" if check["success"] else "FAIL"
        rows.append(
            f"<tr class='{status}'><td>{status}</td><td>{html.escape(check['name'])}</td>"
            f"<td>{html.escape(check['description'])}</td><td>{html.escape(str(check['observed']))}</td>"
            f"<td>{check['offending_count']}</td><td>{listed or html.escape(check['error'] or '')}</td></tr>"
        )
    title = f"Data validation: {'passed' if data['success'] else 'FAILED'}"
    return (
        f"<!doctype html><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px;vertical-align:top}"
        "table{border-collapse:collapse}.FAIL td:first-child{color:#b00;font-weight:bold}</style>"
        f"<h1>{title}</h1><p>{html.escape(data['manifest'])}: {data['rows']} rows, "
        f"{data['checks_failed']} of {data['checks_total']} checks failed</p>"
        "<table><tr><th></th><th>check</th><th>expectation</th><th>observed</th><th>offending</th>"
        "<th>rows</th></tr>" + "".join(rows) + "</table>\n"
    )
