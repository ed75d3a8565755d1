"""Background task runs that do not end on their own, without I/O: cancellation on the
memory backend (a run waiting for its upstream is never run; a running one ends
Cancelled, not Completed), the Cancelling → Cancelled rule, and how an abandoned run is
settled (Crashed, retried, Cancelled)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from stratoflow import flow, task
from stratoflow.background.leases import crash_states, is_held, lease_ended, retries_left
from stratoflow.exceptions import CancelledRun, InvalidTransitionError, OptionError
from stratoflow.models import TaskRun
from stratoflow.orchestration.cancelling import cancelled_instead
from stratoflow.runs import cancel_task_run, read_task_runs
from stratoflow.states import (
    Cancelling,
    Completed,
    Pending,
    Retrying,
    Running,
    Scheduled,
    StateType,
)
from stratoflow.testing import stratoflow_test_harness

STARTED = threading.Event()
GATE = threading.Event()
CALLS: list[str] = []


@task
def held_up(x: int) -> int:
    CALLS.append("held_up")
    STARTED.set()
    if not GATE.wait(10):
        raise TimeoutError("the test never opened the gate")
    return x


@task
def double(x: int) -> int:
    CALLS.append("double")
    return 2 * x


@flow
def with_a_task() -> str:
    double(1)
    return "done"


@pytest.fixture(autouse=True)
def harness() -> Iterator[Any]:
    STARTED.clear()
    GATE.clear()
    CALLS.clear()
    with stratoflow_test_harness() as found:
        yield found
    GATE.set()


# Cancellation on the memory backend (.delay runs in a background thread)


def test_a_run_cancelled_while_it_waits_for_its_upstream_is_never_run() -> None:
    upstream = held_up.delay(1)
    assert STARTED.wait(5)
    downstream = double.apply_async((2,), wait_for=[upstream])
    assert cancel_task_run(downstream.task_run_id).name == "Cancelled"
    GATE.set()
    assert upstream.result(timeout=10) == 1
    downstream.wait(timeout=10)
    with pytest.raises(CancelledRun, match="before a task worker started it"):
        downstream.result(timeout=1)
    assert CALLS == ["held_up"]
    assert [s.name for s in downstream.task_run.state_history] == ["Scheduled"]


def test_a_running_run_ends_cancelled_and_its_result_is_not_kept() -> None:
    future = held_up.delay(3)
    assert STARTED.wait(5)
    assert cancel_task_run(future.task_run_id).name == "Cancelling"
    GATE.set()
    future.wait(timeout=10)
    assert future.state.type is StateType.CANCELLED
    assert "outcome was discarded" in (future.state.message or "")
    with pytest.raises(CancelledRun):
        future.result(timeout=1)
    with pytest.raises(InvalidTransitionError, match="nothing to cancel"):
        cancel_task_run(future.task_run_id)


def test_a_task_run_of_a_flow_is_cancelled_with_its_flow(harness: Any) -> None:
    with_a_task()
    (flow_run,) = harness.services.backend.list_flow_runs()
    (task_run,) = read_task_runs(flow_run.id)
    with pytest.raises(OptionError, match="strato flow-run cancel"):
        cancel_task_run(task_run.id)


# The rule: Cancelling takes only Cancelled


def run_in(state: Any, **fields: Any) -> TaskRun:
    return TaskRun(
        id="r", name="r", task_key="k", dynamic_key="r", task_name="t", state=state, **fields
    )


def test_a_cancelling_run_turns_any_other_proposal_into_cancelled() -> None:
    cancelling = run_in(Cancelling("Cancellation requested."))
    completed = cancelled_instead(cancelling, Completed())
    assert completed is not None and completed.type is StateType.CANCELLED
    assert "Completed" in (completed.message or "")
    retrying = cancelled_instead(cancelling, Retrying())
    assert retrying is not None and "before it went on" in (retrying.message or "")
    assert cancelled_instead(cancelling, Cancelling()) is None
    assert cancelled_instead(run_in(Running()), Completed()) is None


# Settling an abandoned run


def test_leases_and_how_an_abandoned_run_is_settled(harness: Any) -> None:
    now = harness.clock.now()
    lease = {"heartbeat": now, "sweep_due": now + timedelta(seconds=90)}
    running = run_in(Running(), run_count=1, retries=1, **lease)
    assert is_held(running) and not lease_ended(running, now)
    assert lease_ended(running, now + timedelta(seconds=90))
    waiting = run_in(Scheduled(), sweep_due=now)
    assert not is_held(waiting) and not lease_ended(waiting, now)

    states, retry = crash_states(running, "the crash sweep")
    assert retry and [s.name for s in states] == ["Crashed", "AwaitingRetry"]
    assert states[0].details == {"retry": True}
    assert "found by the crash sweep" in (states[0].message or "")
    assert "attempt 1 of 2" in (states[1].message or "")

    last = run_in(Running(), run_count=2, retries=1, **lease)
    assert not retries_left(last)
    assert [s.name for s in crash_states(last, "x")[0]] == ["Crashed"]
    # A worker that died before its first attempt: that counts as the attempt.
    early = run_in(Pending(), run_count=0, retries=0, **lease)
    assert [s.name for s in crash_states(early, "x")[0]] == ["Crashed"]
    cancelling = run_in(Cancelling(), run_count=1, retries=3, **lease)
    states, retry = crash_states(cancelling, "x")
    assert not retry and [s.name for s in states] == ["Cancelled"]
