"""dvc.yaml's ``plots:`` show the curves `evaluate` writes for whichever methods it measured: each
curve kind is one folder (``reports/curves/<kind>/<method>.csv``), so a new method's curves appear
with no edit to dvc.yaml (DVC draws one plot per file of the folder; the overlay of every method is
reports/curves/<kind>.png and the dashboard's Curves page)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def plots() -> dict[str, dict]:
    entries = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    return {name: spec for entry in entries for name, spec in entry.items()}


@pytest.mark.parametrize("kind", ["roc", "pr", "pro"])
def test_each_curve_kind_is_one_folder_of_csv_files(kind: str) -> None:
    spec = plots()[f"reports/curves/{kind}"]
    assert (spec["x"], spec["y"]) == ("x", "y")


def test_no_plot_lists_a_method_by_name() -> None:
    from diffad.components.methods import method_names

    text = yaml.safe_dump(yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"])
    assert not [m for m in method_names() if f"/{m}.csv" in text]
