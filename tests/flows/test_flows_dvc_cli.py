"""Stage order comes from DVC's own graph; failures are classified as transient or permanent."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from flows.dvc_cli import (
    StageFailed,
    TransientStageError,
    ancestors,
    classify_failure,
    dvc_environment,
    is_transient,
    parse_dot,
    run_dvc,
    stage_order,
    topological_order,
)

# `dvc dag --dot` of a diamond, nodes listed in an order that is NOT a valid run order
DIAMOND = """strict digraph {
"evaluate";
"train";
"sub/dvc.yaml:features";
"convert";
"train" -> "evaluate";
"sub/dvc.yaml:features" -> "evaluate";
"convert" -> "train";
"convert" -> "sub/dvc.yaml:features";
"lonely";
}
"""


def test_dot_graph_is_parsed_into_dependencies():
    graph = parse_dot(DIAMOND)
    assert graph == {
        "evaluate": {"train", "sub/dvc.yaml:features"},
        "train": {"convert"},
        "sub/dvc.yaml:features": {"convert"},
        "convert": set(),
        "lonely": set(),
    }


def test_topological_order_puts_every_stage_after_its_dependencies():
    graph = parse_dot(DIAMOND)
    order = topological_order(graph)
    assert sorted(order) == sorted(graph)
    for stage, deps in graph.items():
        assert all(order.index(dep) < order.index(stage) for dep in deps)
    assert ancestors(graph, "evaluate") == {"train", "sub/dvc.yaml:features", "convert"}
    assert ancestors(graph, "convert") == set()


def test_stage_order_of_a_real_project_follows_the_dag_not_the_file(tiny_project):
    # dvc.yaml lists train before convert_dataset
    assert stage_order(tiny_project) == ["convert_dataset", "train", "evaluate"]


@pytest.mark.parametrize(
    ("returncode", "output", "transient"),
    [
        (255, "ERROR: failed to reproduce 'train': failed to run: python t.py, exited with 75", True),
        (255, "ERROR: failed to reproduce 'train': failed to run: python t.py, exited with -9", True),
        (
            255,
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n... exited with 1",
            True,
        ),
        (255, "ERROR: Unable to acquire lock. Most likely another DVC process is running", True),
        (-15, "", True),
        (255, "error: data validation failed\nERROR: failed to run: python c.py, exited with 2", False),
        (255, "ValueError: shapes do not match\nERROR: failed to run: python t.py, exited with 1", False),
        (1, "ERROR: 'dvc.yaml' is invalid.", False),
    ],
)
def test_failures_are_classified(returncode, output, transient):
    exc = classify_failure(["repro", "train"], returncode, output, Path("/p"))
    assert isinstance(exc, StageFailed)
    assert is_transient(exc) is transient


def test_stage_exit_code_is_read_from_dvc_output():
    exc = classify_failure(["repro", "x"], 255, "boom\nfailed to run: python x.py, exited with 3", Path("/p"))
    assert exc.exit_code == 3 and exc.returncode == 255
    assert "exited with 3" in str(exc) and "/p" in str(exc)


def test_run_dvc_raises_classified_errors_with_the_output(tiny_project):
    with pytest.raises(StageFailed) as info:
        run_dvc(["repro", "--single-item", "no_such_stage"], tiny_project)
    assert not isinstance(info.value, TransientStageError)
    assert "no_such_stage" in str(info.value)


def test_stage_commands_find_this_interpreter_first():
    env = dvc_environment({"PATH": "/usr/bin"})
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert env["DVC_NO_ANALYTICS"] == "1"
