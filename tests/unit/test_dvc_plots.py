"""dvc.yaml's ``plots:`` overlay the curves of exactly the methods `evaluate` writes (issue 12):
``evaluate.methods`` of params.yaml, in its order, and for the PRO curve only the methods whose
detector has anomaly maps (the registry says which). Adding a method to ``evaluate.methods``
without its curves here fails with the entries to paste."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from diffad.config import load_params
from diffad.detectors.base import detector_class

ROOT = Path(__file__).resolve().parents[2]


def expected_plot_files(kind: str) -> list[str]:
    methods = load_params(ROOT / "params.yaml").evaluate.methods
    return [f"reports/curves/{kind}/{m}.csv" for m in methods if kind != "pro" or detector_class(m).has_map]


@pytest.mark.parametrize("kind", ["roc", "pr", "pro"])
def test_dvc_plots_overlay_the_curves_of_every_evaluated_method(kind: str) -> None:
    plots = {
        name: spec
        for entry in yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
        for name, spec in entry.items()
    }
    expected = expected_plot_files(kind)
    entries = "".join(f"        {f}: y\n" for f in expected)
    assert list(plots[kind]["y"]) == expected, f"dvc.yaml plots -> {kind} -> y should read:\n{entries}"
