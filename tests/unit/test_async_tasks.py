"""`async def` tasks, with Prefect 3's semantics: awaited calls, gather, submit and map,
retries, timeouts, caching, hooks, results. No I/O: the test harness's memory backend,
temporary stores and fake clock."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest

from stratoflow import ProcessPoolTaskRunner, flow, task
from stratoflow.cache_policies import INPUTS
from stratoflow.clock import SystemClock
from stratoflow.concurrency import create_concurrency_limit, read_concurrency_limit
from stratoflow.exceptions import TaskRunTimeoutError, UpstreamTaskError
from stratoflow.futures import StratoFuture
from stratoflow.models import TaskRun
from stratoflow.runtime import task_run as current_task_run
from stratoflow.states import State, StateType
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


def history_names(run: TaskRun) -> list[str]:
    assert run.state is not None
    return [s.name for s in run.state_history] + [run.state.name]


@task
async def double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


@task
async def boom(message: str = "bad input") -> int:
    await asyncio.sleep(0)
    raise ValueError(message)


@task
def increment(x: int) -> int:
    return x + 1


# Calling and awaiting


def test_calling_an_async_task_returns_a_coroutine_that_runs_it_when_awaited(
    harness: TestHarness,
) -> None:
    made: list[Any] = []

    @flow
    async def pipeline() -> int:
        pending = double(4)
        made.append(pending)
        assert harness.task_runs(harness.last_flow_run().id) == []  # not started yet
        return await pending

    assert asyncio.run(pipeline()) == 8
    assert asyncio.iscoroutine(made[0])
    [run] = harness.task_runs()
    assert history_names(run) == ["Pending", "Running", "Completed"]
    assert run.name == "double-0"
    assert run.flow_run_id == harness.last_flow_run().id


def test_return_state_gives_the_final_state(harness: TestHarness) -> None:
    states: list[State] = []

    @flow
    async def pipeline() -> None:
        states.append(await double(2, return_state=True))
        states.append(await boom(return_state=True))

    asyncio.run(pipeline())
    completed, failed = states
    assert completed.is_completed() and completed.result() == 4
    assert failed.is_failed()
    assert isinstance(failed.result(raise_on_failure=False), ValueError)


def test_gather_runs_task_runs_concurrently_on_the_flows_loop(harness: TestHarness) -> None:
    # Each task waits for the other to have started: run one after the other, they
    # would time out.
    started = {"a": asyncio.Event, "b": asyncio.Event}
    events: dict[str, asyncio.Event] = {}

    @task
    async def meet(me: str, other: str) -> str:
        events[me].set()
        await asyncio.wait_for(events[other].wait(), timeout=5)
        return me

    @flow
    async def pipeline() -> list[str]:
        for name, make in started.items():
            events[name] = make()
        return list(await asyncio.gather(meet("a", "b"), meet("b", "a"), double(5)))

    assert asyncio.run(pipeline()) == ["a", "b", 10]
    runs = harness.task_runs()
    assert sorted(r.name for r in runs) == ["double-0", "meet-0", "meet-1"]
    assert all(r.state is not None and r.state.is_completed() for r in runs)


def test_the_task_run_context_belongs_to_each_gathered_run(harness: TestHarness) -> None:
    @task
    async def whoami(delay: float) -> str:
        await asyncio.sleep(delay)
        return str(current_task_run.name)

    @flow
    async def pipeline() -> list[str]:
        return list(await asyncio.gather(whoami(0.02), whoami(0.0)))

    assert asyncio.run(pipeline()) == ["whoami-0", "whoami-1"]


def test_a_failure_raises_at_the_await_and_fails_the_run(harness: TestHarness) -> None:
    @flow
    async def pipeline() -> int:
        return await boom("no")

    state = asyncio.run(pipeline(return_state=True))
    assert state.is_failed()
    with pytest.raises(ValueError, match="no"):
        state.result()
    [run] = harness.task_runs()
    assert run.state is not None and run.state.is_failed()
    assert "ValueError: no" in str(run.state.message)


def test_sync_tasks_are_called_from_async_flows(harness: TestHarness) -> None:
    @flow
    async def pipeline() -> int:
        return increment(await double(3))

    assert asyncio.run(pipeline()) == 7


def test_an_async_task_called_in_a_sync_flow_returns_a_coroutine(harness: TestHarness) -> None:
    # Prefect 3: calling it gives a coroutine in sync code too; asyncio.run runs it as a
    # task run of the flow.
    @flow
    def pipeline() -> int:
        pending = double(6)
        assert asyncio.iscoroutine(pending)
        return asyncio.run(pending)

    assert pipeline() == 12
    [run] = harness.task_runs()
    assert run.flow_run_id == harness.last_flow_run().id


def test_an_async_task_runs_outside_a_flow(harness: TestHarness) -> None:
    assert asyncio.run(double(21)) == 42
    state = asyncio.run(boom(return_state=True))
    assert state.is_failed()


def test_futures_passed_to_an_awaited_task_are_resolved(harness: TestHarness) -> None:
    @flow
    async def pipeline() -> int:
        first = double.submit(1)
        return await double(first)

    assert asyncio.run(pipeline()) == 4
    first, second = harness.task_runs()
    assert second.upstream_task_run_ids == {first.id}


def test_an_upstream_failure_stops_an_awaited_task(harness: TestHarness) -> None:
    states: list[State] = []

    @flow
    async def pipeline() -> None:
        failed = boom.submit()
        states.append(await double(failed, return_state=True))  # type: ignore[arg-type]

    asyncio.run(pipeline(return_state=True))
    [state] = states
    assert state.name == "NotReady"
    assert isinstance(state.result(raise_on_failure=False), UpstreamTaskError)


# submit and map


def test_submit_and_map_of_async_tasks_in_an_async_flow_return_futures(
    harness: TestHarness,
) -> None:
    @flow
    async def pipeline() -> tuple[int, list[int]]:
        future = double.submit(10)
        assert isinstance(future, StratoFuture)
        mapped = double.map([1, 2, 3])
        mapped.wait()
        return future.result(), mapped.result()

    assert asyncio.run(pipeline()) == (20, [2, 4, 6])
    assert len(harness.task_runs()) == 4


def test_submit_and_map_of_async_tasks_in_a_sync_flow(harness: TestHarness) -> None:
    @flow
    def pipeline() -> tuple[int, list[int]]:
        future = double.submit(10)
        future.wait()
        return future.result(), double.map([1, 2]).result()

    assert pipeline() == (20, [2, 4])
    assert all(r.state is not None and r.state.is_completed() for r in harness.task_runs())


def test_a_failed_submitted_async_task_raises_from_result(harness: TestHarness) -> None:
    @flow
    def pipeline() -> int:
        return boom.submit("submitted").result()

    state = pipeline(return_state=True)
    assert state.is_failed()
    with pytest.raises(ValueError, match="submitted"):
        state.result()


# Retries, timeouts


def test_retries_with_delays(harness: TestHarness) -> None:
    calls: list[int] = []

    @task(retries=3, retry_delay_seconds=[1, 5])
    async def flaky() -> str:
        calls.append(1)
        await asyncio.sleep(0)
        if len(calls) < 3:
            raise ConnectionError(f"failure {len(calls)}")
        return "done"

    @flow
    async def pipeline() -> str:
        return await flaky()

    assert asyncio.run(pipeline()) == "done"
    assert harness.clock.sleeps == [1, 5]  # type: ignore[attr-defined]
    [run] = harness.task_runs()
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
    @flow
    async def pipeline() -> int:
        return await boom.with_options(retries=2)()

    assert asyncio.run(pipeline(return_state=True)).is_failed()
    [run] = harness.task_runs()
    assert run.run_count == 3


def test_a_timeout_cancels_the_coroutine_and_ends_timed_out(harness: TestHarness) -> None:
    cancelled: list[bool] = []

    @task(timeout_seconds=0.05)
    async def slow() -> int:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return 1

    state = asyncio.run(slow(return_state=True))
    assert (state.type, state.name) == (StateType.FAILED, "TimedOut")
    assert isinstance(state.result(raise_on_failure=False), TaskRunTimeoutError)
    assert "exceeded its timeout of 0.05 seconds" in str(state.message)
    assert cancelled == [True]


def test_a_timeout_error_raised_by_the_task_is_a_failure_not_a_timeout(
    harness: TestHarness,
) -> None:
    @task(timeout_seconds=5)
    async def raises_timeout() -> int:
        raise TimeoutError("the upstream API timed out")

    state = asyncio.run(raises_timeout(return_state=True))
    assert (state.type, state.name) == (StateType.FAILED, "Failed")


def test_a_timed_out_task_is_retried(harness: TestHarness) -> None:
    calls: list[int] = []

    @task(timeout_seconds=0.05, retries=1)
    async def slow_then_fast() -> str:
        calls.append(1)
        if len(calls) == 1:
            await asyncio.sleep(10)
        return "fast"

    assert asyncio.run(slow_then_fast()) == "fast"


# Caching, results


def test_caching_skips_the_second_call(harness: TestHarness) -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS)
    async def expensive(x: int) -> int:
        calls.append(x)
        return x * 100

    @flow
    async def pipeline() -> list[int]:
        return [await expensive(1), await expensive(1), await expensive(2)]

    assert asyncio.run(pipeline()) == [100, 100, 200]
    assert calls == [1, 2]
    names = [r.state.name for r in harness.task_runs() if r.state is not None]
    assert names == ["Completed", "Cached", "Completed"]


def test_persisted_results_are_readable(harness: TestHarness) -> None:
    @task(persist_result=True)
    async def produce() -> dict[str, int]:
        return {"rows": 3}

    @flow
    async def pipeline() -> dict[str, int]:
        return await produce()

    asyncio.run(pipeline())
    [run] = harness.task_runs()
    assert run.result_record is not None
    assert run.result_record.load() == {"rows": 3}


# Hooks


def test_async_hooks_are_awaited_on_the_flows_loop(harness: TestHarness) -> None:
    seen: list[tuple[str, str, bool]] = []
    loops: list[asyncio.AbstractEventLoop] = []

    async def on_completion(t: Any, run: TaskRun, state: State) -> None:
        await asyncio.sleep(0)
        seen.append(("completed", state.name, asyncio.get_running_loop() is loops[0]))

    async def on_failure(t: Any, run: TaskRun, state: State) -> None:
        seen.append(("failed", state.name, asyncio.get_running_loop() is loops[0]))

    def sync_hook(t: Any, run: TaskRun, state: State) -> None:
        seen.append(("sync", state.name, True))

    @flow
    async def pipeline() -> None:
        loops.append(asyncio.get_running_loop())
        await double.with_options(on_completion=[on_completion, sync_hook])(1)
        await boom.with_options(on_failure=on_failure)(return_state=True)

    asyncio.run(pipeline())
    assert seen == [
        ("completed", "Completed", True),
        ("sync", "Completed", True),
        ("failed", "Failed", True),
    ]


def test_an_async_hook_of_a_sync_task_runs_to_completion(harness: TestHarness) -> None:
    seen: list[str] = []

    async def on_completion(t: Any, run: TaskRun, state: State) -> None:
        await asyncio.sleep(0)
        seen.append(state.name)

    @flow
    async def called_from_async() -> int:
        # A sync task in an async flow: its engine blocks the loop, so the hook runs
        # on a loop of its own.
        return increment.with_options(on_completion=on_completion)(1)

    @flow
    def called_from_sync() -> int:
        return increment.with_options(on_completion=on_completion)(2)

    assert asyncio.run(called_from_async()) == 2
    assert called_from_sync() == 3
    assert seen == ["Completed", "Completed"]


def test_a_failing_async_hook_is_logged_and_changes_nothing(harness: TestHarness) -> None:
    async def broken(t: Any, run: TaskRun, state: State) -> None:
        raise RuntimeError("hook broke")

    @flow
    async def pipeline() -> int:
        return await double.with_options(on_completion=broken)(2)

    assert asyncio.run(pipeline()) == 4
    assert any(
        "error was encountered while running hook 'broken'" in m for m in harness.log_messages()
    )


# Concurrency limits


@pytest.fixture
def real_time_harness() -> Iterator[TestHarness]:
    # Leases expire on the clock: a fake clock would jump past them while runs wait.
    with stratoflow_test_harness(clock=SystemClock()) as h:
        yield h


def test_gathered_tasks_share_a_tag_limit_without_blocking_the_loop(
    real_time_harness: TestHarness,
) -> None:
    # With one slot, the second and third runs wait for the slot in a thread, while
    # the loop keeps running the first, which gives the slot back.
    create_concurrency_limit("tag:db", 1)
    active: list[int] = []
    most: list[int] = [0]

    @task(tags=["db"])
    async def query(x: int) -> int:
        active.append(x)
        most[0] = max(most[0], len(active))
        await asyncio.sleep(0.01)
        active.remove(x)
        return x

    @flow
    async def pipeline() -> list[int]:
        return list(await asyncio.gather(query(1), query(2), query(3)))

    assert asyncio.run(pipeline()) == [1, 2, 3]
    assert most == [1]


def test_a_run_cancelled_while_it_waits_for_a_slot_crashes_and_frees_the_slot(
    real_time_harness: TestHarness,
) -> None:
    create_concurrency_limit("tag:db", 1)
    release = asyncio.Event

    @task(tags=["db"])
    async def holds(done: asyncio.Event) -> int:
        await done.wait()
        return 1

    @flow
    async def pipeline() -> int:
        done = release()
        holder = asyncio.ensure_future(holds(done))
        await asyncio.sleep(0.05)  # the holder has the slot
        waiter = asyncio.ensure_future(holds(done))
        await asyncio.sleep(0.05)  # the waiter waits for it
        waiter.cancel()
        await asyncio.sleep(0.05)
        done.set()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        return await holder

    assert asyncio.run(pipeline()) == 1
    names = sorted(r.state.name for r in real_time_harness.task_runs() if r.state is not None)
    assert names == ["Completed", "Crashed"]
    now = real_time_harness.clock.now()
    assert read_concurrency_limit("tag:db").leased_slots(now) == 0


# Process pool: module-level task and flow, so that the worker process can import them.


@task
async def async_square_in_worker(x: int) -> tuple[int, int]:
    await asyncio.sleep(0)
    return os.getpid(), x * x


@flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
async def async_process_pool_flow() -> list[tuple[int, int]]:
    return async_square_in_worker.map([2, 3]).result()


@pytest.mark.slow
def test_async_tasks_run_in_a_process_pool(harness: TestHarness) -> None:
    results = asyncio.run(async_process_pool_flow())
    assert [square for _, square in results] == [4, 9]
    assert all(pid != os.getpid() for pid, _ in results)
    assert all(r.state is not None and r.state.is_completed() for r in harness.task_runs())
