"""Task runners: the thread pool runs task runs concurrently and drains before the flow
ends; the process pool runs them in worker processes and reports back."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from stratoflow import (
    ProcessPoolTaskRunner,
    ThreadPoolTaskRunner,
    flow,
    get_run_logger,
    task,
)
from stratoflow.context import flow_run_context
from stratoflow.models import FlowRun, LogEntry, TaskRun
from stratoflow.runtime import task_run as runtime_task_run
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


# Thread pool


def test_thread_pool_runs_tasks_concurrently(harness: TestHarness) -> None:
    # Each task waits for the other at the barrier: both finish only if they overlap.
    barrier = threading.Barrier(2, timeout=5)

    @task
    def meet(name: str) -> str:
        barrier.wait()
        return name

    @flow
    def concurrent() -> list[str]:
        first = meet.submit("a")
        second = meet.submit("b")
        return [first.result(), second.result()]

    assert concurrent() == ["a", "b"]
    assert all(t.state.is_completed() for t in harness.task_runs())  # type: ignore[union-attr]


def test_thread_pool_max_workers_one_runs_tasks_one_at_a_time(harness: TestHarness) -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    @task
    def work() -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.01)
        with lock:
            active -= 1

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    def serial() -> None:
        for future in [work.submit() for _ in range(4)]:
            future.wait()

    serial()
    assert peak == 1


def test_thread_pool_tasks_run_in_worker_threads(harness: TestHarness) -> None:
    @task
    def thread_name() -> str:
        return threading.current_thread().name

    @flow
    def names() -> tuple[str, str]:
        return thread_name.submit().result(), thread_name()

    submitted, direct = names()
    assert submitted.startswith("stratoflow-task")
    assert direct == threading.current_thread().name


def test_all_submitted_futures_finish_before_the_flow_run_ends(harness: TestHarness) -> None:
    finished: list[int] = []

    @task
    def slow(i: int) -> int:
        time.sleep(0.05)
        finished.append(i)
        return i

    @flow
    def forgets() -> str:
        for i in range(3):
            slow.submit(i)
        return "returned before the tasks finished"

    forgets()
    assert sorted(finished) == [0, 1, 2]
    run = harness.last_flow_run()
    task_runs = harness.task_runs(run.id)
    assert len(task_runs) == 3
    assert all(t.state is not None and t.state.is_completed() for t in task_runs)
    assert run.end_time is not None
    assert all(t.end_time is not None and t.end_time <= run.end_time for t in task_runs)


def test_each_flow_run_gets_its_own_runner(harness: TestHarness) -> None:
    runner = ThreadPoolTaskRunner(max_workers=2)
    used: list[Any] = []

    @flow(task_runner=runner)
    def records_runner() -> None:
        ctx = flow_run_context.get()
        assert ctx is not None
        used.append(ctx.task_runner)

    records_runner()
    records_runner()
    assert len({id(r) for r in used}) == 2
    assert runner not in used
    assert all(r.max_workers == 2 for r in used)


def test_runner_duplicate_and_validation() -> None:
    runner = ThreadPoolTaskRunner(max_workers=3)
    copy = runner.duplicate()
    assert isinstance(copy, ThreadPoolTaskRunner)
    assert copy is not runner
    assert copy.max_workers == 3
    processes = ProcessPoolTaskRunner(max_workers=2).duplicate()
    assert isinstance(processes, ProcessPoolTaskRunner)
    assert processes.max_workers == 2
    with pytest.raises(ValueError, match="needs at least 1"):
        ThreadPoolTaskRunner(max_workers=0)
    with pytest.raises(ValueError, match="needs at least 1"):
        ProcessPoolTaskRunner(max_workers=0)


def test_runners_pickle_as_their_configuration() -> None:
    import cloudpickle

    copy = cloudpickle.loads(cloudpickle.dumps(ThreadPoolTaskRunner(max_workers=4)))
    assert isinstance(copy, ThreadPoolTaskRunner)
    assert copy.max_workers == 4
    processes = cloudpickle.loads(cloudpickle.dumps(ProcessPoolTaskRunner(3, "spawn")))
    assert isinstance(processes, ProcessPoolTaskRunner)
    assert (processes.max_workers, processes.mp_context) == (3, "spawn")


# Process pool: the tasks and the flow are at module level so that worker processes can
# import them. One flow run (one pool start-up) serves all the tests below.


@task
def worker_pid(x: int) -> tuple[int, int]:
    get_run_logger().info("hello from the worker with x=%d", x)
    return os.getpid(), x * x


@task
def worker_fails() -> None:
    raise ValueError("broken in the worker")


@task(retries=2)
def worker_flaky() -> int:
    if runtime_task_run.run_count < 2:
        raise RuntimeError("first attempt fails")
    return runtime_task_run.run_count


@task
def square(x: int) -> int:
    return x * x


@flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
def process_flow() -> dict[str, Any]:
    pid_future = worker_pid.submit(3)
    failing = worker_fails.submit()
    flaky = worker_flaky.submit()
    squares = square.map([1, 2, 3])
    chained = square.submit(squares[1])
    return {
        "pid": pid_future.result(),
        "failure": failing.result(raise_on_failure=False),
        "failure_state": failing.state.name,
        "flaky": flaky.result(),
        "squares": squares.result(),
        "chained": chained.result(),
        "chained_inputs": chained.task_run.task_inputs,
        "upstream_id": squares[1].task_run_id,
    }


@dataclass
class ProcessRun:
    result: dict[str, Any]
    flow_run: FlowRun
    task_runs: dict[str, TaskRun]
    logs: list[LogEntry]


@pytest.fixture(scope="module")
def process_run() -> ProcessRun:
    with stratoflow_test_harness() as h:
        result = process_flow()
        flow_run = h.last_flow_run()
        task_runs = {t.name: t for t in h.task_runs(flow_run.id)}
        return ProcessRun(result, flow_run, task_runs, h.logs(flow_run.id))


def test_process_pool_runs_tasks_in_other_processes(process_run: ProcessRun) -> None:
    pid, value = process_run.result["pid"]
    assert pid != os.getpid()
    assert value == 9
    assert process_run.flow_run.state is not None
    assert process_run.flow_run.state.is_completed()


def test_process_pool_returns_results(process_run: ProcessRun) -> None:
    assert process_run.result["squares"] == [1, 4, 9]
    assert process_run.result["chained"] == 16
    # The upstream future is resolved in the flow's process and recorded as usual.
    upstream = process_run.result["upstream_id"]
    assert process_run.result["chained_inputs"] == {"x": [upstream]}


def test_process_pool_reports_failures(process_run: ProcessRun) -> None:
    failure = process_run.result["failure"]
    assert isinstance(failure, ValueError)
    assert str(failure) == "broken in the worker"
    assert process_run.result["failure_state"] == "Failed"
    task_run = process_run.task_runs["worker_fails-0"]
    assert task_run.state is not None
    assert task_run.state.is_failed()
    assert "ValueError: broken in the worker" in (task_run.state.message or "")


def test_process_pool_retries(process_run: ProcessRun) -> None:
    assert process_run.result["flaky"] == 2
    task_run = process_run.task_runs["worker_flaky-0"]
    assert task_run.run_count == 2
    assert [s.name for s in task_run.state_history] == [
        "Pending",
        "Running",
        "AwaitingRetry",
        "Retrying",
    ]
    assert task_run.state is not None
    assert task_run.state.is_completed()


def test_process_pool_states_and_logs_reach_the_parent_backend(
    process_run: ProcessRun,
) -> None:
    task_run = process_run.task_runs["worker_pid-0"]
    assert [s.name for s in task_run.state_history] == ["Pending", "Running"]
    assert task_run.state is not None
    assert task_run.state.is_completed()
    assert task_run.start_time is not None
    assert task_run.end_time is not None
    [entry] = [log for log in process_run.logs if "hello from the worker" in log.message]
    assert entry.message == "hello from the worker with x=3"
    assert entry.task_run_id == task_run.id
    assert entry.task_run_name == "worker_pid-0"
    assert entry.flow_run_id == process_run.flow_run.id
    assert any(
        "retry 1/2" in log.message and log.task_run_name == "worker_flaky-0"
        for log in process_run.logs
    )
