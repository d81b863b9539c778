"""Running Great Expectations checks on a table: an ephemeral GX context (nothing written, no
analytics, no network), quiet, one :class:`~diffad.data.validation_report.Check` per expectation,
offending rows named by the :data:`ROW` column. The manifest's suite (:mod:`diffad.data.validation`)
and the verdict checks (:mod:`diffad.feedback.validation`) run through it."""

from __future__ import annotations

import logging
import os
from typing import Any

import pandas as pd

from diffad.data.validation_report import MAX_LISTED, Check, ValidationReport

ROW = "_row"  # the column naming each row in a report: its path, or "row <i>"


def import_gx():
    """Great Expectations, imported quietly (no analytics, no INFO logs); ~3 s the first time."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # before import: it logs a lot
    import great_expectations as gx

    _quiet_gx_loggers()
    return gx


def run_checks(frame: pd.DataFrame, checks: list, *, name: str, rows: int) -> ValidationReport:
    """Run ``(check name, description, expectation)`` triples on ``frame`` (its :data:`ROW` column
    names offending rows) in an ephemeral GX context."""
    gx = import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = context.data_sources.add_pandas("prepared").add_dataframe_asset("manifest")
    suite = context.suites.add(gx.ExpectationSuite(name="manifest"))
    descriptions = {}
    for check_name, description, expectation in checks:
        expectation.meta = {"check": check_name}
        suite.add_expectation(expectation)
        descriptions[check_name] = description
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(
            name="manifest", data=batch.add_batch_definition_whole_dataframe("all"), suite=suite
        )
    )
    result = definition.run(
        batch_parameters={"dataframe": frame},
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW]},
    )
    outcomes = {r.expectation_config.meta["check"]: r for r in result.results}
    return ValidationReport(
        manifest=name,
        rows=rows,
        checks=tuple(_check(n, descriptions[n], outcomes[n]) for n, _, _ in checks),
    )


def _quiet_gx_loggers() -> None:
    """Some GX modules pin their own logger to INFO; the stage's INFO log wants none of it."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _check(name: str, description: str, result: Any) -> Check:
    details = result.result or {}
    index_list = details.get("unexpected_index_list") or []
    column = result.expectation_config.kwargs.get("column")
    offending = tuple(
        {"path": entry.get(ROW), "value": entry.get(column) if column else None}
        for entry in index_list[:MAX_LISTED]
    )
    observed = details.get("observed_value", details.get("unexpected_count"))
    mismatched = (details.get("details") or {}).get("mismatched")
    if isinstance(mismatched, dict) and "missing" in mismatched:  # a column-set check: name what's absent
        observed = {"missing": mismatched["missing"]}
    elif name == "columns" and isinstance(observed, list):  # the manifest's, not the checks' helpers
        observed = [c for c in observed if not str(c).startswith("_")]
    return Check(
        name=name,
        description=description,
        success=bool(result.success),
        observed=observed,
        offending=offending,
        offending_count=int(details.get("unexpected_count") or len(index_list)),
        error=_exception_message(result.exception_info),
    )


def _exception_message(info: Any) -> str | None:
    """GX reports exceptions flat or keyed by metric; return the first message, if any."""
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info.get("raised_exception") else None
    for value in info.values():
        message = _exception_message(value)
        if message:
            return message
    return None
