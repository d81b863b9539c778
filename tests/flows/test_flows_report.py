"""The markdown artifact shows metrics with deltas, the validation verdict and the output locations."""

from __future__ import annotations

from flows.promotion import compare_metrics
from flows.report import render_report

ACCEPTED = {"msma": {"image_auroc": 0.90, "pixel_auroc": 0.80}}
NEW = {"msma": {"image_auroc": 0.95, "pixel_auroc": 0.70, "aupro": None}}


def test_report_of_a_rejected_run():
    decision = compare_metrics(NEW, ACCEPTED, tolerance=0.02)
    validation = {"success": True, "results": [{"expectation": "a", "success": True}] * 3}
    text = render_report(
        run_id="r1",
        category="fabric",
        state="Failed",
        reason="metrics fell",
        metrics=NEW,
        decision=decision,
        tolerance=0.02,
        validation=validation,
        outputs={"reports/heatmaps": "/p/runs/fabric/accepted/reports/heatmaps", "models/bundle": "/b"},
        stages=["convert_dataset", "train"],
    )
    assert "# Retrain `fabric`: Failed, not promoted" in text
    row = next(line for line in text.splitlines() if line.startswith("| msma |"))
    assert "0.9500 (+0.0500)" in row and "0.7000 (-0.1000)" in row and "–" in row
    assert "msma.pixel_auroc: 0.7000 < 0.8000 - 0.02" in text
    assert "Data validation passed (3/3 checks met)." in text
    assert "- heatmaps: `/p/runs/fabric/accepted/reports/heatmaps`" in text
    assert "- bundle: `/b`" in text
    assert "`convert_dataset` → `train`" in text


def test_report_of_a_validation_failure_lists_the_failing_expectations():
    validation = {
        "success": False,
        "results": [
            {
                "expectation": "expect_column_values_to_be_between",
                "kwargs": {"column": "mean"},
                "success": False,
            },
            {"expectation_type": "expect_table_row_count_to_be_between", "success": True},
        ],
    }
    text = render_report(
        run_id="r2",
        category="washer",
        state="Failed",
        reason="ValidationGateFailed: ...",
        metrics=None,
        decision=None,
        tolerance=0.02,
        validation=validation,
        outputs={},
        stages=[],
    )
    assert "Data validation **failed** (1/2 checks met)." in text
    assert "- `expect_column_values_to_be_between` on `mean`" in text
    assert "No metrics" in text and "> ValidationGateFailed" in text


def test_report_reads_diffads_own_validation_report():
    validation = {
        "success": False,
        "checks_failed": 2,
        "checks_total": 3,
        "checks": [
            {
                "name": "train_images",
                "description": "at least 8 train images",
                "success": False,
                "observed": 3,
                "offending_count": 0,
                "offending": [],
            },
            {
                "name": "mean_range",
                "description": "image means in range",
                "success": False,
                "observed": None,
                "offending_count": 4,
                "offending": [{"path": "a.png", "value": 0.0}],
            },
            {
                "name": "unique_path",
                "description": "paths unique",
                "success": True,
                "observed": None,
                "offending_count": 0,
                "offending": [],
            },
        ],
    }
    text = render_report(
        run_id="r3",
        category="fabric",
        state="Failed",
        reason=None,
        metrics=None,
        decision=None,
        tolerance=0.02,
        validation=validation,
        outputs={},
        stages=[],
    )
    assert "Data validation **failed** (1/3 checks met)." in text
    assert "- `train_images`: at least 8 train images (observed 3)" in text
    assert "- `mean_range`: image means in range (4 offending rows)" in text
    assert "unique_path" not in text
