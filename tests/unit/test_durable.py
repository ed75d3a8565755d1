"""Durable-run building blocks without I/O: replay keys, positions and divergence,
pausing in process (memory backend), sleeps outside deployments, and stratoflow.input."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import stratoflow
from stratoflow import flow, task
from stratoflow.clock import FakeClock
from stratoflow.engine.replay import (
    FLOW_SCOPE,
    CallPositions,
    ReplayHistory,
    replay_key,
    scope_of,
)
from stratoflow.exceptions import NotPausedError, ReplayDivergenceError
from stratoflow.flow_runs import pause_flow_run, resume_flow_run, suspend_flow_run
from stratoflow.input import (
    RunInput,
    keyset_from_base_key,
    receive_input,
    send_input,
)
from stratoflow.models import TaskRun
from stratoflow.states import Completed, Failed, StateType
from stratoflow.testing import TestHarness, stratoflow_test_harness


class CallbackClock(FakeClock):
    """A fake clock that calls `on_sleep` each time the code under test sleeps on it."""

    def __init__(self) -> None:
        super().__init__()
        self.on_sleep: Callable[[], None] = lambda: None

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.on_sleep()


@pytest.fixture
def clock() -> CallbackClock:
    return CallbackClock()


@pytest.fixture
def harness(clock: CallbackClock) -> Iterator[TestHarness]:
    with stratoflow_test_harness(clock=clock) as h:
        yield h


# Keys and positions


def recorded(task_key: str, scope: str, ordinal: int, index: int, attempt: int, **kw) -> TaskRun:  # type: ignore[no-untyped-def]
    return TaskRun(
        id=f"{task_key}-{ordinal}-{attempt}",
        name=f"{task_key}-{ordinal}",
        task_key=task_key,
        dynamic_key=str(ordinal),
        task_name=task_key,
        replay_key=replay_key(scope, task_key, ordinal),
        call_index=index,
        flow_run_attempt=attempt,
        **kw,
    )


def test_positions_count_calls_per_scope_and_per_task() -> None:
    positions = CallPositions()
    first = positions.next(FLOW_SCOPE, "a-1")
    second = positions.next(FLOW_SCOPE, "b-2")
    third = positions.next(FLOW_SCOPE, "a-1")
    nested = positions.next(first.key, "a-1")
    assert [p.key for p in (first, second, third)] == ["/a-1#0", "/b-2#0", "/a-1#1"]
    assert [p.call_index for p in (first, second, third)] == [0, 1, 2]
    assert (nested.key, nested.call_index) == ("/a-1#0/a-1#0", 0)


def test_the_scope_of_a_recorded_run_comes_back_from_its_key() -> None:
    assert scope_of(recorded("a-1", FLOW_SCOPE, 3, 0, 1)) == FLOW_SCOPE
    assert scope_of(recorded("b-2", "/a-1#0", 0, 0, 1)) == "/a-1#0"
    assert scope_of(TaskRun(id="x", name="x", task_key="k", dynamic_key="0", task_name="k")) is None


def test_history_replays_completed_calls_with_a_result_only() -> None:
    done = recorded("a-1", FLOW_SCOPE, 0, 0, 1, state=Completed())
    done.result_record = object()  # type: ignore[assignment]
    no_result = recorded("b-2", FLOW_SCOPE, 0, 1, 1, state=Completed())
    failed = recorded("c-3", FLOW_SCOPE, 0, 2, 1, state=Failed())
    history = ReplayHistory("run", [done, no_result, failed], since_attempt=1)
    assert history.recorded("/a-1#0") is done
    assert history.recorded("/b-2#0") is None  # its result was not stored: it runs again
    assert history.recorded("/c-3#0") is None
    assert ReplayHistory("run", [done], since_attempt=2).recorded("/a-1#0") is None


def test_a_different_task_at_a_recorded_position_is_a_divergence() -> None:
    history = ReplayHistory("nightly", [recorded("a-1", FLOW_SCOPE, 0, 0, 1)], since_attempt=1)
    positions = CallPositions()
    same = positions.next(FLOW_SCOPE, "a-1")
    history.check_position(same, "a-1", "a")  # the same task: fine
    other = CallPositions().next(FLOW_SCOPE, "z-9")
    with pytest.raises(ReplayDivergenceError) as caught:
        history.check_position(other, "z-9", "z")
    message = str(caught.value)
    assert "'nightly' diverged" in message and "call #1 of the flow function" in message
    assert "'a-1' in attempt 1" in message and "--from-scratch" in message


def test_the_latest_attempt_decides_a_position() -> None:
    runs = [recorded("a-1", FLOW_SCOPE, 0, 1, 1), recorded("b-2", FLOW_SCOPE, 0, 1, 2)]
    history = ReplayHistory("run", runs, since_attempt=1)
    positions = CallPositions()
    positions.next(FLOW_SCOPE, "x")
    history.check_position(positions.next(FLOW_SCOPE, "b-2"), "b-2", "b")


# Pausing in process (a run that cannot suspend)


class Answer(RunInput):
    ok: bool
    note: str = ""


def test_a_local_run_pauses_in_process_until_resumed_with_input(
    harness: TestHarness, clock: CallbackClock
) -> None:
    seen: list[str] = []

    @task
    def work() -> int:
        seen.append("work")
        return 1

    @flow
    def approval() -> str:
        work()
        answer = pause_flow_run(wait_for_input=Answer, timeout=60, poll_interval=5)
        return f"{answer.ok}:{answer.note}"

    def resume_once() -> None:
        run = harness.last_flow_run()
        if run.state is not None and run.state.type is StateType.PAUSED:
            assert run.state.name == "Paused"  # it holds its process
            with pytest.raises(Exception, match="stays paused"):
                resume_flow_run(run.id, run_input={"ok": "nope"})
            resume_flow_run(run.id, run_input={"ok": True, "note": "go"})

    clock.on_sleep = resume_once
    assert approval() == "True:go"
    assert seen == ["work"]
    run = harness.last_flow_run()
    assert [s.name for s in run.state_history].count("Paused") == 1


def test_a_local_pause_not_resumed_in_time_fails_the_run(harness: TestHarness) -> None:
    @flow
    def waits() -> None:
        pause_flow_run(timeout=30, poll_interval=10)

    state = waits(return_state=True)
    assert state.type is StateType.FAILED
    assert "was not resumed within 30 seconds" in state.message


def test_suspending_needs_a_deployment(harness: TestHarness) -> None:
    @flow
    def local() -> None:
        suspend_flow_run()

    state = local(return_state=True)
    assert state.type is StateType.FAILED
    assert "Cannot suspend flows without a deployment" in state.message


def test_waiting_for_an_event_needs_a_deployment(harness: TestHarness) -> None:
    @flow
    def local() -> None:
        stratoflow.wait_for_event("acme.model.trained", timeout=10)

    state = local(return_state=True)
    assert state.type is StateType.FAILED
    assert "wait_for_event waits without compute" in state.message
    assert "needs a deployment's run on a worker" in state.message


def test_pausing_from_inside_a_task_is_refused(harness: TestHarness) -> None:
    @task
    def inner() -> None:
        pause_flow_run(timeout=1)

    @flow
    def outer() -> None:
        inner()

    state = outer(return_state=True)
    assert "called from a flow function, not from inside a task" in str(
        state.result(raise_on_failure=False)
    )


def test_resuming_a_run_that_is_not_paused_says_so(harness: TestHarness) -> None:
    @flow
    def quick() -> int:
        return 1

    quick()
    run = harness.last_flow_run()
    with pytest.raises(NotPausedError, match=r"is Completed.*not paused"):
        resume_flow_run(run.id)


def test_sleep_outside_a_deployment_blocks_on_the_clock(
    harness: TestHarness, clock: CallbackClock
) -> None:
    @flow
    def naps() -> str:
        stratoflow.sleep(2.5)
        return "rested"

    assert naps() == "rested"
    assert 2.5 in clock.sleeps
    with pytest.raises(ValueError, match="0 or more"):
        stratoflow.sleep(-1)


# stratoflow.input


class Number(RunInput):
    number: int


def test_inputs_sent_to_a_run_are_received_in_order_once(harness: TestHarness) -> None:
    Number(number=1).send_to("run-1")
    send_input(Number(number=2), "run-1")
    received = Number.receive(flow_run_id="run-1", timeout=0)
    assert [n.number for n in received] == [1, 2]
    assert list(Number.receive(flow_run_id="run-1", timeout=0, exclude_keys=set())) != []
    with pytest.raises(TimeoutError, match="No input with key prefix 'number-auto'"):
        Number.receive(flow_run_id="run-2", timeout=0, raise_timeout_error=True).next()


def test_plain_values_travel_as_automatic_inputs(harness: TestHarness) -> None:
    send_input(42, "run-3")
    assert list(receive_input(int, flow_run_id="run-3", timeout=0)) == [42]
    with_metadata = receive_input(int, flow_run_id="run-3", timeout=0, with_metadata=True)
    first = next(iter(with_metadata))
    assert first.value == 42 and first.metadata.receiver == "run-3"


def test_with_initial_data_and_keysets() -> None:
    Prefilled = Answer.with_initial_data(description="Approve?", ok=True)
    assert Prefilled().ok is True and Prefilled.description == "Approve?"
    assert keyset_from_base_key("pause-0") == {
        "description": "pause-0-description",
        "response": "pause-0-response",
        "schema": "pause-0-schema",
    }
    assert Answer.keyset_from_type()["response"] == "answer-response"
