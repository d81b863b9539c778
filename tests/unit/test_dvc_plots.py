"""dvc.yaml's ``plots:`` show the curves `evaluate` writes for whichever methods it measured: each
curve kind is one long table (``reports/curves/<kind>.csv``: method, x, y) and the template
``.dvc/plots/methods.json`` draws one line per method, so a new method's curves appear with no edit
to dvc.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def plots() -> dict[str, dict]:
    entries = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    return {name: spec for entry in entries for name, spec in entry.items()}


@pytest.mark.parametrize("kind", ["roc", "pr", "pro"])
def test_each_curve_kind_is_one_table_drawn_one_line_per_method(kind: str) -> None:
    spec = plots()[f"reports/curves/{kind}.csv"]
    assert (spec["x"], spec["y"], spec["template"]) == ("x", "y", "methods")


def test_the_template_colours_by_the_tables_method_column() -> None:
    template = json.loads((ROOT / ".dvc/plots/methods.json").read_text())
    assert template["encoding"]["color"]["field"] == "method"
    assert template["data"]["values"] == "<DVC_METRIC_DATA>"


def test_no_curve_plot_names_a_method() -> None:
    from diffad.components.methods import method_names

    curves = {name: spec for name, spec in plots().items() if name.startswith("reports/curves")}
    text = yaml.safe_dump(curves)
    assert len(curves) == 3 and not [m for m in method_names() if m in text]


def cached_outputs() -> list[str]:
    """Every cached output path of dvc.yaml, a ``foreach`` stage's expanded for each key."""
    paths = []
    for stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].values():
        keys, stage = (list(stage["foreach"]), stage["do"]) if "foreach" in stage else ([None], stage)
        for out in stage.get("outs", []):
            name, spec = next(iter(out.items())) if isinstance(out, dict) else (out, {})
            if spec.get("cache", True):
                paths += [name if key is None else name.replace("${key}", key) for key in keys]
    return paths


def test_no_plot_lies_inside_a_cached_output() -> None:
    """`dvc exp run <one stage>` on a fresh clone collects the plots; DVC then fails to look inside
    a cached folder its cache does not hold yet ("failed to load directory")."""
    cached = cached_outputs()
    assert "models/methods/msma_flow" in cached
    inside = [(plot, out) for plot in plots() for out in cached if plot.startswith(out + "/")]
    assert not inside
