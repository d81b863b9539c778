"""retrain-all queues a category again when its run crashed (its worker died), on a real server.

The crash itself (a worker host powered off, the server's heartbeat automation marking the run
Crashed) is in tests/hosts/test_three_hosts.py; here the states are set through the API."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def _run_ending_in(flow, state):
    """A run of ``flow`` that went straight to ``state`` (no worker ever took it)."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        run = client.create_flow_run(flow)
        client.set_flow_run_state(run.id, state, force=True)
    return run.id


def _wait(flow, runs: dict, crash_retries: int, then) -> tuple[dict[str, str], list[tuple[str, int]]]:
    """`_wait_for_runs` inside a flow (it logs to the flow run); each requeued run ends in ``then()``."""
    from prefect import flow as make_flow

    from flows.retrain import _wait_for_runs

    queued: list[tuple[str, int]] = []

    def requeue(name: str, attempt: int):
        queued.append((name, attempt))
        return _run_ending_in(flow, then())

    @make_flow(name="wait-for-runs")
    def waiter() -> dict[str, str]:
        return _wait_for_runs(runs, 0.1, requeue, crash_retries)

    return waiter(), queued


@pytest.fixture
def stand_in():
    from prefect import flow

    @flow(name="stand-in")
    def stand_in() -> None:
        """Never runs: its runs only carry states."""

    return stand_in


def test_a_crashed_run_is_queued_again_and_its_category_completes(prefect_server, stand_in):
    from prefect.states import Completed, Crashed

    crashed = _run_ending_in(stand_in, Crashed(message="no heartbeat for 90 s"))
    done = _run_ending_in(stand_in, Completed())
    states, queued = _wait(stand_in, {"alpha": crashed, "beta": done}, crash_retries=1, then=Completed)
    assert states == {"alpha": "Completed", "beta": "Completed"}
    assert queued == [("alpha", 1)]


def test_a_category_that_crashes_again_ends_crashed_after_its_retries(prefect_server, stand_in):
    from prefect.states import Crashed, Failed

    crashed = _run_ending_in(stand_in, Crashed())
    failed = _run_ending_in(stand_in, Failed())  # a failure is the run's own: not queued again
    states, queued = _wait(stand_in, {"alpha": crashed, "beta": failed}, crash_retries=2, then=Crashed)
    assert states == {"alpha": "Crashed", "beta": "Failed"}
    assert queued == [("alpha", 1), ("alpha", 2)]
