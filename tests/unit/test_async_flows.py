"""`async def` flows, with Prefect 3's semantics: a call returns a coroutine, subflows
are awaited, and retries, timeouts, hooks, results and parameters behave as for `def`
flows. No I/O: the test harness's memory backend, temporary stores and fake clock."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import stratoflow
from stratoflow import flow, task
from stratoflow.engine.flow_engine import FlowRunEngine, call_flow
from stratoflow.engine.steps import run_to_completion
from stratoflow.exceptions import FlowRunTimeoutError, ParameterValidationError
from stratoflow.models import FlowRun
from stratoflow.runtime import flow_run as current_flow_run
from stratoflow.states import Scheduled, State, StateType
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


def history_names(run: FlowRun) -> list[str]:
    assert run.state is not None
    return [s.name for s in run.state_history] + [run.state.name]


@task
async def double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


@flow
async def doubled(x: int) -> int:
    return await double(x)


# Calling


def test_calling_an_async_flow_returns_a_coroutine(harness: TestHarness) -> None:
    pending = doubled(3)
    assert asyncio.iscoroutine(pending)
    assert harness.flow_runs() == []  # nothing runs until it is awaited
    assert asyncio.run(pending) == 6
    run = harness.last_flow_run()
    assert history_names(run) == ["Pending", "Running", "Completed"]
    assert run.flow_name == "doubled"
    assert [t.name for t in harness.task_runs(run.id)] == ["double-0"]


def test_return_state_gives_the_final_state(harness: TestHarness) -> None:
    state = asyncio.run(doubled(5, return_state=True))
    assert state.is_completed()
    assert state.result() == 10


def test_isasync_tells_the_two_kinds_apart() -> None:
    @flow
    def sync_flow() -> None:
        return None

    assert doubled.isasync and double.isasync
    assert not sync_flow.isasync


def test_a_failure_fails_the_run_and_raises(harness: TestHarness) -> None:
    @flow
    async def fails() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("it broke")

    with pytest.raises(RuntimeError, match="it broke"):
        asyncio.run(fails())
    state = asyncio.run(fails(return_state=True))
    assert state.is_failed()
    assert "RuntimeError: it broke" in str(state.message)


def test_parameters_are_validated_and_coerced(harness: TestHarness) -> None:
    assert asyncio.run(doubled("4")) == 8  # type: ignore[arg-type]
    with pytest.raises(ParameterValidationError, match="valid integer"):
        asyncio.run(doubled("four"))  # type: ignore[arg-type]
    assert harness.last_flow_run().state.is_failed()  # type: ignore[union-attr]


def test_a_flow_returning_a_failed_task_state_fails(harness: TestHarness) -> None:
    @task
    async def boom() -> None:
        raise ValueError("task failed")

    @flow
    async def returns_state() -> State:
        return await boom(return_state=True)

    state = asyncio.run(returns_state(return_state=True))
    assert state.is_failed()


# Subflows


def test_an_awaited_async_subflow_is_a_child_run(harness: TestHarness) -> None:
    @flow
    async def parent() -> int:
        return await doubled(2) + await doubled(3)

    assert asyncio.run(parent()) == 10
    runs = harness.flow_runs()
    parent_run = harness.last_flow_run()
    children = [r for r in runs if r.parent_flow_run_id == parent_run.id]
    assert len(children) == 2
    assert all(c.state is not None and c.state.is_completed() for c in children)


def test_gathered_subflows_run_concurrently(harness: TestHarness) -> None:
    events: dict[str, asyncio.Event] = {}

    @flow
    async def meet(me: str, other: str) -> str:
        events[me].set()
        await asyncio.wait_for(events[other].wait(), timeout=5)
        return me

    @flow
    async def parent() -> list[str]:
        events.update(a=asyncio.Event(), b=asyncio.Event())
        return list(await asyncio.gather(meet("a", "b"), meet("b", "a")))

    assert asyncio.run(parent()) == ["a", "b"]


def test_a_sync_subflow_in_an_async_flow(harness: TestHarness) -> None:
    @flow
    def sync_child(x: int) -> int:
        return x + 1

    @flow
    async def parent() -> int:
        return sync_child(await double(1))

    assert asyncio.run(parent()) == 3
    parent_run = harness.last_flow_run()
    [child] = [r for r in harness.flow_runs() if r.parent_flow_run_id == parent_run.id]
    assert child.flow_name == "sync-child"


def test_an_async_subflow_in_a_sync_flow_returns_a_coroutine(harness: TestHarness) -> None:
    @flow
    def parent() -> int:
        pending = doubled(4)
        assert asyncio.iscoroutine(pending)
        return asyncio.run(pending)

    assert parent() == 8
    parent_run = harness.last_flow_run()
    [child] = [r for r in harness.flow_runs() if r.parent_flow_run_id == parent_run.id]
    assert child.state is not None and child.state.is_completed()


# Running an async flow to its end from sync code (the CLI, workers)


def test_call_flow_runs_an_async_flow_to_its_end(harness: TestHarness) -> None:
    # `strato flow run` calls call_flow for every flow.
    state = call_flow(doubled, (), {"x": 6}, return_state=True)
    assert state.is_completed() and state.result() == 12


def test_run_existing_runs_an_async_flow_to_its_end(harness: TestHarness) -> None:
    # What a worker does with a claimed deployment run.
    run = FlowRun(
        id="existing-run",
        name="claimed",
        flow_name=doubled.name,
        parameters={"x": "7"},
        created=harness.clock.now(),
    )
    harness.backend.create_flow_run(run)
    harness.backend.set_flow_run_state(run.id, Scheduled())
    run = harness.backend.read_flow_run(run.id)
    state = FlowRunEngine(doubled, harness.services).run_existing(run)
    assert state.is_completed() and state.result() == 14


def test_run_to_completion_works_inside_a_running_loop(harness: TestHarness) -> None:
    # Sync code called from async code (a sync task calling an async flow's engine)
    # cannot block on its own loop: the coroutine runs on a helper thread's loop.
    async def caller() -> tuple[int, bool]:
        outer = threading.get_ident()

        async def inner() -> int:
            return threading.get_ident()

        thread = run_to_completion(inner())
        return thread, thread != outer

    _, other_thread = asyncio.run(caller())
    assert other_thread
    assert run_to_completion(double.fn(3)) == 6  # no running loop: asyncio.run


# Retries, timeouts


def test_retries_with_delays(harness: TestHarness) -> None:
    attempts: list[int] = []

    @flow(retries=2, retry_delay_seconds=[3, 7])
    async def flaky() -> str:
        attempts.append(current_flow_run.run_count)
        await asyncio.sleep(0)
        if len(attempts) < 3:
            raise ConnectionError("not yet")
        return "done"

    assert asyncio.run(flaky()) == "done"
    assert attempts == [1, 2, 3]
    assert harness.clock.sleeps == [3, 7]  # type: ignore[attr-defined]
    run = harness.last_flow_run()
    assert run.run_count == 3
    assert history_names(run) == [
        "Pending",
        "Running",
        "AwaitingRetry",
        "Retrying",
        "AwaitingRetry",
        "Retrying",
        "Completed",
    ]


def test_retries_run_out(harness: TestHarness) -> None:
    @flow(retries=1)
    async def always_fails() -> None:
        raise ValueError("never")

    state = asyncio.run(always_fails(return_state=True))
    assert state.is_failed()
    assert harness.last_flow_run().run_count == 2


def test_a_timeout_cancels_the_body_and_ends_timed_out(harness: TestHarness) -> None:
    cancelled: list[bool] = []

    @flow(timeout_seconds=0.05)
    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    state = asyncio.run(slow(return_state=True))
    assert (state.type, state.name) == (StateType.FAILED, "TimedOut")
    assert isinstance(state.result(raise_on_failure=False), FlowRunTimeoutError)
    assert cancelled == [True]


# Hooks, results, cancellation, crashes


def test_hooks_may_be_async_and_are_awaited_on_the_flows_loop(harness: TestHarness) -> None:
    seen: list[tuple[str, str, asyncio.AbstractEventLoop]] = []
    loops: list[asyncio.AbstractEventLoop] = []

    def hook(kind: str) -> Any:
        async def record(f: Any, run: FlowRun, state: State) -> None:
            await asyncio.sleep(0)
            seen.append((kind, state.name, asyncio.get_running_loop()))

        return record

    @flow(on_running=hook("running"), on_completion=[hook("completed")])
    async def succeeds() -> None:
        loops.append(asyncio.get_running_loop())

    @flow(on_failure=hook("failed"))
    async def fails() -> None:
        loops.append(asyncio.get_running_loop())
        raise ValueError("no")

    asyncio.run(succeeds())
    asyncio.run(fails(return_state=True))
    assert [(kind, name) for kind, name, _ in seen] == [
        ("running", "Running"),
        ("completed", "Completed"),
        ("failed", "Failed"),
    ]
    assert [loop for _, _, loop in seen] == [loops[0], loops[0], loops[1]]


def test_async_hooks_of_a_sync_flow_run_to_completion(harness: TestHarness) -> None:
    seen: list[str] = []

    async def on_completion(f: Any, run: FlowRun, state: State) -> None:
        await asyncio.sleep(0)
        seen.append(state.name)

    @flow(on_completion=on_completion)
    def sync_flow() -> int:
        return 1

    assert sync_flow() == 1
    assert seen == ["Completed"]


def test_persisted_results_are_readable(harness: TestHarness) -> None:
    @flow(persist_result=True)
    async def produce() -> list[int]:
        return list(await asyncio.gather(double(1), double(2)))

    assert asyncio.run(produce()) == [2, 4]
    run = harness.last_flow_run()
    assert run.result_record is not None
    assert run.result_record.load() == [2, 4]


def test_submitted_task_runs_finish_before_the_flow_run(harness: TestHarness) -> None:
    @task
    async def slow(x: int) -> int:
        await asyncio.sleep(0.05)
        return x

    @flow
    async def fire_and_forget() -> None:
        slow.submit(1)

    asyncio.run(fire_and_forget())
    [run] = harness.task_runs()
    assert run.state is not None and run.state.is_completed()


def test_cancelling_stops_the_flow_at_its_next_task(harness: TestHarness) -> None:
    cancellations: list[str] = []

    async def on_cancellation(f: Any, run: FlowRun, state: State) -> None:
        cancellations.append(state.name)

    @flow(on_cancellation=on_cancellation)
    async def cancels_itself() -> None:
        stratoflow.cancel_flow_run(str(current_flow_run.id))
        await double(1)

    state = asyncio.run(cancels_itself(return_state=True))
    assert state.type is StateType.CANCELLED
    assert harness.task_runs() == []
    assert cancellations == ["Cancelled"]


def test_a_cancelled_event_loop_task_crashes_the_run(harness: TestHarness) -> None:
    @flow
    async def waits() -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        running = asyncio.ensure_future(waits())
        await asyncio.sleep(0.02)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    asyncio.run(main())
    assert harness.last_flow_run().state.type is StateType.CRASHED  # type: ignore[union-attr]


def test_cancelled_while_it_waits_for_submitted_runs_the_run_crashes(
    harness: TestHarness,
) -> None:
    @task
    def slow() -> int:
        time.sleep(0.2)
        return 1

    @flow
    async def submits() -> None:
        slow.submit()

    async def main() -> None:
        running = asyncio.ensure_future(submits())
        await asyncio.sleep(0.05)  # the body returned; the run waits for `slow`
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    asyncio.run(main())
    run = harness.last_flow_run()
    assert run.state is not None and run.state.type is StateType.CRASHED
    [task_run] = harness.task_runs(run.id)
    assert task_run.state is not None and task_run.state.is_completed()  # it was let finish
