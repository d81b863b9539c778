"""The markdown artifact: outcome, metrics with deltas and the rule, every validation check by name
with the offending files, the output locations. Validation reports come from the real suite."""

from __future__ import annotations

import pandas as pd
import pytest

from diffad.artifacts.records import validation_from_dict
from diffad.artifacts.runs import RunRecord
from diffad.data.validation import validate_manifest
from flows.promotion import compare_metrics
from flows.report import render_report

ACCEPTED = {"msma": {"image_auroc": 0.90, "pixel_auroc": 0.80}}
NEW = {"msma": {"image_auroc": 0.95, "pixel_auroc": 0.70, "aupro": None}}


def _validation(leak: bool):
    """The GX suite's own report on a three-row manifest, with a planted train/test copy or not."""
    rows = {
        "path": ["images/test/good/a.png", "images/train/good/b.png", "images/train/good/c.png"],
        "split": ["test", "train", "train"],
        "label": ["good"] * 3,
        "defect": ["good"] * 3,
        "mask_path": [""] * 3,
        "width": [8] * 3,
        "height": [8] * 3,
        "channels": [3] * 3,
        "mean": [0.5] * 3,
        "std": [0.1, 0.2, 0.2],
        "sha256": ["x", "y", "x" if leak else "z"],
        "source_path": ["a", "b", "c"],
        "source_mode": ["RGB"] * 3,
        "mask_pixels": [0] * 3,
        "pixel_sha256": ["pa", "pb", "pc"],
        "origin": ["source"] * 3,
    }
    report = validate_manifest(
        pd.DataFrame(rows), resolution=8, has_masks=False, min_train_images=1, min_test_images=0
    )
    return validation_from_dict(report.to_dict())  # what the flow reads back from validation.json


@pytest.fixture(scope="module")
def passing():
    return _validation(leak=False)


@pytest.fixture(scope="module")
def leaking():
    return _validation(leak=True)


def test_report_of_a_run_that_is_not_promoted(passing):
    decision = compare_metrics(NEW, ACCEPTED, tolerance=0.02)
    record = RunRecord(
        run_id="r1",
        category="fabric",
        outcome="not_promoted",
        state="Failed",
        reason="metrics fell",
        metrics=NEW,
        baseline=decision.baseline,
        rule=decision.rule,
        deltas=decision.deltas,
        regressions=decision.regressions,
    )
    text = render_report(
        record=record,
        tolerance=0.02,
        validation=passing,
        outputs={"reports/heatmaps": "/p/runs/fabric/accepted/reports/heatmaps", "models/bundle": "/b"},
        stages=["convert_dataset", "train"],
    )
    assert "# Retrain `fabric`: not promoted (worse than its baseline)" in text
    row = next(line for line in text.splitlines() if line.startswith("| msma |"))
    assert "0.9500 (+0.0500)" in row and "0.7000 (-0.1000)" in row and "–" in row
    assert "msma.pixel_auroc: 0.7000 < 0.8000 - 0.02" in text
    assert "Rule: accepted when no image_auroc/pixel_auroc/aupro" in text
    n = len(passing.checks)
    assert f"Data validation passed: {n} of {n} checks met" in text
    for check in passing.checks:  # every check by name
        assert f"| `{check.name}`:" in text
    assert "- heatmaps: `/p/runs/fabric/accepted/reports/heatmaps`" in text
    assert "`convert_dataset` → `train`" in text


def test_report_of_a_validation_failure_names_the_check_and_the_file(leaking):
    record = RunRecord(
        run_id="r2",
        category="washer",
        outcome="rejected",
        state="Failed",
        reason="ValidationGateFailed: ...",
        validation=leaking.digest(),
        validation_report="runs/history/r2/validation/validation.json",
    )
    text = render_report(record=record, tolerance=0.02, validation=leaking, outputs={}, stages=[])
    assert "rejected at the data validation gate" in text
    assert "Data validation **failed**" in text
    leak = next(line for line in text.splitlines() if "`train_test_leak`" in line)
    assert "**FAIL**" in leak and "`images/test/good/a.png`" in leak
    assert "No metrics" in text and "> ValidationGateFailed" in text
    assert "runs/history/r2/validation/validation.json" in text
