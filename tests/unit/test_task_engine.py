"""Task runs inside (and outside) flows: retries, states, timeouts, hooks, names, inputs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

import stratoflow
from stratoflow import allow_failure, exponential_backoff, flow, task
from stratoflow.exceptions import MissingContextError, TaskRunTimeoutError, UpstreamTaskError
from stratoflow.models import TaskRun
from stratoflow.runtime import task_run as current_task_run
from stratoflow.states import Completed, Failed, State, StateType
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


def history_names(run: TaskRun) -> list[str]:
    assert run.state is not None
    return [s.name for s in run.state_history] + [run.state.name]


def failing_times(times: int, value: Any = "done") -> Any:
    """A function that raises ValueError `times` times, then returns `value`."""
    calls: list[int] = []

    def fn() -> Any:
        calls.append(1)
        if len(calls) <= times:
            raise ValueError(f"failure {len(calls)}")
        return value

    fn.calls = calls  # type: ignore[attr-defined]
    return fn


def run_in_flow(the_task: Any, *args: Any, **kwargs: Any) -> State:
    """Call `the_task` in a flow and return its final state."""
    states: list[State] = []

    @flow
    def outer() -> None:
        states.append(the_task(*args, return_state=True, **kwargs))

    outer()
    return states[0]


# Retries


def test_retries_until_completed(harness: TestHarness) -> None:
    fn = failing_times(2)
    flaky = task(retries=3)(fn)

    @flow
    def pipeline() -> str:
        return flaky()

    assert pipeline() == "done"
    assert len(fn.calls) == 3
    (run,) = harness.task_runs()
    assert run.run_count == 3
    assert run.state is not None
    assert run.state.name == "Completed"
    assert harness.clock.sleeps == [0.0, 0.0]  # type: ignore[attr-defined]


def test_retries_exhausted_fails_with_the_last_exception(harness: TestHarness) -> None:
    fn = failing_times(10)
    flaky = task(retries=2)(fn)

    @flow
    def pipeline() -> str:
        return flaky()

    with pytest.raises(ValueError, match="failure 3"):
        pipeline()
    assert len(fn.calls) == 3
    (run,) = harness.task_runs()
    assert run.run_count == 3
    assert run.state is not None
    assert run.state.is_failed()
    assert run.state.name == "Failed"


def test_no_retries_by_default(harness: TestHarness) -> None:
    fn = failing_times(1)
    state = run_in_flow(task(fn))
    assert state.is_failed()
    assert len(fn.calls) == 1
    assert harness.clock.sleeps == []  # type: ignore[attr-defined]


def test_state_history_of_a_retried_task(harness: TestHarness) -> None:
    start = harness.clock.now()
    run_in_flow(task(retries=2, retry_delay_seconds=5)(failing_times(1)))
    (run,) = harness.task_runs()
    assert history_names(run) == ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]
    awaiting = run.state_history[2]
    assert awaiting.type is StateType.SCHEDULED
    assert awaiting.message == "Task run encountered an exception ValueError: failure 1"
    assert awaiting.details["scheduled_time"] == start + timedelta(seconds=5)
    assert run.state_history[3].type is StateType.RUNNING


def test_retry_delay_as_a_number(harness: TestHarness) -> None:
    run_in_flow(task(retries=3, retry_delay_seconds=5)(failing_times(10)))
    assert harness.clock.sleeps == [5.0, 5.0, 5.0]  # type: ignore[attr-defined]


def test_retry_delay_as_a_list_repeats_the_last_value(harness: TestHarness) -> None:
    run_in_flow(task(retries=4, retry_delay_seconds=[1, 10])(failing_times(10)))
    assert harness.clock.sleeps == [1.0, 10.0, 10.0, 10.0]  # type: ignore[attr-defined]


def test_retry_delay_with_exponential_backoff(harness: TestHarness) -> None:
    run_in_flow(task(retries=3, retry_delay_seconds=exponential_backoff(2))(failing_times(10)))
    assert harness.clock.sleeps == [2.0, 4.0, 8.0]  # type: ignore[attr-defined]


def test_retry_delays_stop_once_the_task_completes(harness: TestHarness) -> None:
    run_in_flow(task(retries=5, retry_delay_seconds=[1, 2, 3, 4, 5])(failing_times(2)))
    assert harness.clock.sleeps == [1.0, 2.0]  # type: ignore[attr-defined]


def test_retry_jitter_uses_the_injected_rng(harness: TestHarness) -> None:
    harness.services.rng = lambda: 0.25
    run_in_flow(task(retries=2, retry_delay_seconds=10, retry_jitter_factor=0.5)(failing_times(10)))
    # Uniform over [5, 15]: a quarter of the way is 7.5.
    assert harness.clock.sleeps == pytest.approx([7.5, 7.5])  # type: ignore[attr-defined]


def test_retry_jitter_with_a_half_draw_is_the_delay(harness: TestHarness) -> None:
    harness.services.rng = lambda: 0.5
    run_in_flow(
        task(retries=2, retry_delay_seconds=[4, 8], retry_jitter_factor=0.5)(failing_times(10))
    )
    assert harness.clock.sleeps == pytest.approx([4.0, 8.0])  # type: ignore[attr-defined]


def test_retry_jitter_never_goes_below_zero(harness: TestHarness) -> None:
    harness.services.rng = lambda: 0.0
    run_in_flow(task(retries=1, retry_delay_seconds=10, retry_jitter_factor=2)(failing_times(10)))
    assert harness.clock.sleeps == [0.0]  # type: ignore[attr-defined]


def test_retry_jitter_applies_to_exponential_backoff(harness: TestHarness) -> None:
    harness.services.rng = lambda: 0.0
    run_in_flow(
        task(retries=3, retry_delay_seconds=exponential_backoff(10), retry_jitter_factor=0.5)(
            failing_times(10)
        )
    )
    assert harness.clock.sleeps == pytest.approx([5.0, 10.0, 20.0])  # type: ignore[attr-defined]


def test_retry_is_logged(harness: TestHarness) -> None:
    run_in_flow(task(retries=2, retry_delay_seconds=5)(failing_times(1)))
    messages = harness.log_messages()
    assert any(
        "ValueError: failure 1 - retry 1/2 will start 5 second(s) from now" in m for m in messages
    )


def test_retry_condition_fn_false_stops_retries(harness: TestHarness) -> None:
    seen: list[tuple[Any, Any, State]] = []

    def only_key_errors(the_task: Any, task_run: Any, state: State) -> bool:
        seen.append((the_task, task_run, state))
        return isinstance(state.result(raise_on_failure=False), KeyError)

    fn = failing_times(10)
    flaky = task(retries=3, retry_condition_fn=only_key_errors)(fn)
    state = run_in_flow(flaky)

    assert state.is_failed()
    assert len(fn.calls) == 1
    assert harness.clock.sleeps == []  # type: ignore[attr-defined]
    (the_task, task_run, failed) = seen[0]
    assert the_task is flaky
    assert task_run.id == harness.task_runs()[0].id
    assert failed.is_failed()
    assert isinstance(failed.result(raise_on_failure=False), ValueError)


def test_retry_condition_fn_true_retries(harness: TestHarness) -> None:
    errors = [KeyError("a"), KeyError("b"), ValueError("stop")]

    def fn() -> None:
        raise errors.pop(0)

    def only_key_errors(the_task: Any, task_run: Any, state: State) -> bool:
        return isinstance(state.result(raise_on_failure=False), KeyError)

    state = run_in_flow(task(retries=5, retry_condition_fn=only_key_errors)(fn))
    assert isinstance(state.result(raise_on_failure=False), ValueError)
    (run,) = harness.task_runs()
    assert run.run_count == 3
    assert errors == []


def test_raising_retry_condition_fn_means_no_retry(harness: TestHarness) -> None:
    def broken(the_task: Any, task_run: Any, state: State) -> bool:
        raise RuntimeError("condition is broken")

    fn = failing_times(10)
    state = run_in_flow(task(retries=3, retry_condition_fn=broken)(fn))
    assert state.is_failed()
    assert isinstance(state.result(raise_on_failure=False), ValueError)
    assert len(fn.calls) == 1
    assert any(
        "retry_condition_fn raised; the task run will not be retried" in m
        and "condition is broken" in m
        for m in harness.log_messages()
    )


def test_retry_condition_fn_is_not_called_on_success(harness: TestHarness) -> None:
    def condition(the_task: Any, task_run: Any, state: State) -> bool:
        raise AssertionError("called on success")

    state = run_in_flow(task(retries=2, retry_condition_fn=condition)(lambda: 1))
    assert state.is_completed()


def test_returning_a_failed_state_fails_the_task_and_is_retried(harness: TestHarness) -> None:
    calls: list[int] = []

    @task(retries=1)
    def soft_fail() -> State:
        calls.append(1)
        return Failed("soft") if len(calls) == 1 else Completed(data="recovered")

    state = run_in_flow(soft_fail)
    assert state.is_completed()
    assert state.result() == "recovered"
    assert calls == [1, 1]


# Failure and return_state


def test_failed_task_raises_its_original_exception_inside_the_flow(harness: TestHarness) -> None:
    original = KeyError("missing")

    @task
    def broken() -> None:
        raise original

    caught: list[BaseException] = []

    @flow
    def pipeline() -> str:
        try:
            broken()
        except KeyError as exc:
            caught.append(exc)
        return "handled"

    assert pipeline() == "handled"
    assert caught == [original]
    assert caught[0] is original


def test_uncaught_task_failure_fails_the_flow(harness: TestHarness) -> None:
    @task
    def broken() -> None:
        raise ZeroDivisionError("boom")

    @flow
    def pipeline() -> None:
        broken()

    with pytest.raises(ZeroDivisionError, match="boom"):
        pipeline()
    run = harness.last_flow_run()
    assert run.state is not None
    assert run.state.is_failed()


def test_return_state_of_a_failed_task(harness: TestHarness) -> None:
    original = ValueError("bad input")

    @task
    def broken() -> None:
        raise original

    state = run_in_flow(broken)
    assert isinstance(state, State)
    assert state.type is StateType.FAILED
    assert state.name == "Failed"
    assert state.message == "Task run encountered an exception ValueError: bad input"
    assert isinstance(state.timestamp, datetime)
    assert state.timestamp.tzinfo is not None
    assert state.is_failed()
    assert not state.is_completed()
    assert state.is_final()
    assert state.result(raise_on_failure=False) is original
    with pytest.raises(ValueError, match="bad input"):
        state.result()


def test_return_state_of_a_completed_task(harness: TestHarness) -> None:
    @task
    def add(x: int, y: int) -> int:
        return x + y

    state = run_in_flow(add, 2, 3)
    assert state.type is StateType.COMPLETED
    assert state.name == "Completed"
    assert state.is_completed()
    assert not state.is_failed()
    assert state.result() == 5
    assert state.result(raise_on_failure=False) == 5


def test_task_run_record_after_a_run(harness: TestHarness) -> None:
    @task(version="7")
    def add(x: int) -> int:
        return x + 1

    @flow
    def pipeline() -> int:
        return add(1)

    pipeline()
    flow_run = harness.last_flow_run()
    (run,) = harness.task_runs()
    assert run.flow_run_id == flow_run.id
    assert run.task_name == "add"
    assert run.task_version == "7"
    assert run.run_count == 1
    assert run.start_time is not None
    assert run.end_time is not None
    assert run.start_time <= run.end_time
    assert history_names(run) == ["Pending", "Running", "Completed"]


def test_task_called_with_wrong_arguments_names_the_task(harness: TestHarness) -> None:
    @task
    def add(x: int) -> int:
        return x

    @flow
    def pipeline() -> int:
        return add(1, 2)  # type: ignore[call-arg]

    with pytest.raises(TypeError, match=r"task 'add' was called with arguments"):
        pipeline()


# Timeouts


def busy_for(seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass
    return "finished"


def test_timeout_ends_the_task_in_timed_out(harness: TestHarness) -> None:
    slow = task(timeout_seconds=0.2)(busy_for)

    started = time.monotonic()
    state = run_in_flow(slow, 5)
    elapsed = time.monotonic() - started

    assert state.name == "TimedOut"
    assert state.type is StateType.FAILED
    assert state.is_failed()
    assert "exceeded its timeout of 0.2 seconds" in (state.message or "")
    error = state.result(raise_on_failure=False)
    assert isinstance(error, TaskRunTimeoutError)
    assert isinstance(error, TimeoutError)
    assert elapsed < 4  # sanity only: the task would otherwise run for 5 s
    (run,) = harness.task_runs()
    assert run.state is not None
    assert run.state.name == "TimedOut"


def test_timeout_with_a_blocking_sleep(harness: TestHarness) -> None:
    @task(timeout_seconds=0.2)
    def slow(seconds: float) -> None:
        time.sleep(seconds)

    started = time.monotonic()
    state = run_in_flow(slow, 1)
    assert state.name == "TimedOut"
    assert time.monotonic() - started < 0.9  # sanity: the flow does not wait for the sleep


def test_timed_out_task_raises_in_the_flow(harness: TestHarness) -> None:
    slow = task(timeout_seconds=0.2)(busy_for)

    @flow
    def pipeline() -> str:
        return slow(5)

    with pytest.raises(TaskRunTimeoutError, match="exceeded its timeout"):
        pipeline()


def test_timed_out_task_is_retried(harness: TestHarness) -> None:
    attempts: list[int] = []

    @task(timeout_seconds=0.2, retries=1)
    def slow_then_fast() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            return busy_for(5)
        return "fast"

    state = run_in_flow(slow_then_fast)
    assert state.is_completed()
    assert state.result() == "fast"
    (run,) = harness.task_runs()
    assert history_names(run) == [
        "Pending",
        "Running",
        "AwaitingRetry",
        "Retrying",
        "Completed",
    ]


def test_task_within_its_timeout_completes(harness: TestHarness) -> None:
    quick = task(timeout_seconds=5)(busy_for)
    state = run_in_flow(quick, 0.01)
    assert state.is_completed()
    assert state.result() == "finished"


def test_timeout_keeps_the_task_run_context(harness: TestHarness) -> None:
    @task(timeout_seconds=5)
    def who_am_i() -> str:
        return str(current_task_run.name)

    assert run_in_flow(who_am_i).result() == "who_am_i-0"


# Hooks


def test_on_completion_hook_receives_task_task_run_and_state(harness: TestHarness) -> None:
    calls: list[tuple[Any, Any, State]] = []

    def hook(the_task: Any, task_run: Any, state: State) -> None:
        calls.append((the_task, task_run, state))

    def never(the_task: Any, task_run: Any, state: State) -> None:
        raise AssertionError("on_failure called for a completed run")

    hooked = task(on_completion=[hook], on_failure=[never])(lambda: 3)
    run_in_flow(hooked)

    ((the_task, task_run, state),) = calls
    assert the_task is hooked
    assert isinstance(task_run, TaskRun)
    assert task_run.id == harness.task_runs()[0].id
    assert state.is_completed()
    assert state.result() == 3


def test_on_failure_hook_receives_task_task_run_and_state(harness: TestHarness) -> None:
    calls: list[tuple[Any, Any, State]] = []

    def hook(the_task: Any, task_run: Any, state: State) -> None:
        calls.append((the_task, task_run, state))

    def never(the_task: Any, task_run: Any, state: State) -> None:
        raise AssertionError("on_completion called for a failed run")

    hooked = task(on_failure=[hook], on_completion=[never], retries=1)(failing_times(10))
    run_in_flow(hooked)

    assert len(calls) == 1  # once, for the final state: not once per attempt
    (the_task, task_run, state) = calls[0]
    assert the_task is hooked
    assert task_run.id == harness.task_runs()[0].id
    assert state.is_failed()
    assert isinstance(state.result(raise_on_failure=False), ValueError)


def test_failing_hook_is_logged_and_does_not_change_the_state(harness: TestHarness) -> None:
    after: list[str] = []

    def broken_hook(the_task: Any, task_run: Any, state: State) -> None:
        raise RuntimeError("hook exploded")

    def next_hook(the_task: Any, task_run: Any, state: State) -> None:
        after.append(state.name)

    state = run_in_flow(task(on_completion=[broken_hook, next_hook])(lambda: "value"))

    assert state.is_completed()
    assert state.result() == "value"
    assert after == ["Completed"]
    (run,) = harness.task_runs()
    assert run.state is not None
    assert run.state.name == "Completed"
    messages = harness.log_messages()
    assert any(
        "An error was encountered while running hook 'broken_hook'" in m and "hook exploded" in m
        for m in messages
    )


def test_failing_on_failure_hook_keeps_the_failed_state(harness: TestHarness) -> None:
    def broken_hook(the_task: Any, task_run: Any, state: State) -> None:
        raise RuntimeError("hook exploded")

    state = run_in_flow(task(on_failure=[broken_hook])(failing_times(10)))
    assert state.name == "Failed"
    assert isinstance(state.result(raise_on_failure=False), ValueError)
    assert any(
        "error was encountered while running hook 'broken_hook'" in m
        for m in harness.log_messages()
    )


# Task run names


def test_default_task_run_names_count_up(harness: TestHarness) -> None:
    @task
    def step(x: int) -> int:
        return x

    @flow
    def pipeline() -> None:
        step(1)
        step(2)

    pipeline()
    assert [r.name for r in harness.task_runs()] == ["step-0", "step-1"]


def test_task_run_name_template_renders_parameters(harness: TestHarness) -> None:
    @task(task_run_name="load-{table}-{limit}")
    def load(table: str, limit: int = 10) -> str:
        return table

    @flow
    def pipeline() -> None:
        load("users")
        load("orders", limit=5)

    pipeline()
    assert [r.name for r in harness.task_runs()] == ["load-users-10", "load-orders-5"]


def test_task_run_name_template_with_format_spec(harness: TestHarness) -> None:
    @task(task_run_name="part-{n:03d}")
    def part(n: int) -> int:
        return n

    run_in_flow(part, 7)
    assert harness.task_runs()[0].name == "part-007"


def test_task_run_name_callable(harness: TestHarness) -> None:
    @task(task_run_name=lambda: "from-callable")
    def step() -> int:
        return 1

    run_in_flow(step)
    assert harness.task_runs()[0].name == "from-callable"


def test_task_run_name_callable_can_read_the_runtime(harness: TestHarness) -> None:
    # As in Prefect's docs: the callable reads the run's parameters from the runtime.
    def namer() -> str:
        return f"{current_task_run.task_name}-with-{current_task_run.parameters['who']}"

    @task(task_run_name=namer)
    def greet(who: str) -> str:
        return f"hello {who}"

    assert run_in_flow(greet, "ada").result() == "hello ada"
    assert harness.task_runs()[0].name == "greet-with-ada"


def test_task_run_name_is_visible_inside_the_task(harness: TestHarness) -> None:
    @task(task_run_name="item-{i}")
    def item(i: int) -> str:
        return str(current_task_run.name)

    assert run_in_flow(item, 4).result() == "item-4"


def test_bad_task_run_name_template_gives_a_clear_error(harness: TestHarness) -> None:
    calls: list[int] = []

    @task(task_run_name="load-{tabel}")
    def load(table: str) -> str:
        calls.append(1)
        return table

    @flow
    def pipeline() -> str:
        return load("users")

    with pytest.raises(ValueError) as info:
        pipeline()
    message = str(info.value)
    assert "'load-{tabel}'" in message
    assert "task 'load'" in message
    assert "tabel" in message
    assert "not one of its parameters (table)" in message
    assert calls == []


# Outside a flow


def test_calling_a_task_outside_a_flow_runs_it(harness: TestHarness) -> None:
    @task
    def add(x: int, y: int) -> tuple[int, str | None]:
        return x + y, current_task_run.id

    total, task_run_id = add(2, 3)
    assert total == 5
    assert task_run_id is not None
    run = harness.backend.read_task_run(task_run_id)
    assert run.flow_run_id is None
    assert run.state is not None
    assert run.state.is_completed()
    assert harness.flow_runs() == []


def test_task_outside_a_flow_retries_with_the_harness_clock(harness: TestHarness) -> None:
    fn = failing_times(2)
    assert task(retries=2, retry_delay_seconds=30)(fn)() == "done"
    assert harness.clock.sleeps == [30.0, 30.0]  # type: ignore[attr-defined]


def test_task_outside_a_flow_raises_its_exception(harness: TestHarness) -> None:
    @task
    def broken() -> None:
        raise LookupError("nothing here")

    with pytest.raises(LookupError, match="nothing here"):
        broken()
    state = broken(return_state=True)
    assert state.is_failed()


def test_submit_outside_a_flow_raises_missing_context(harness: TestHarness) -> None:
    @task
    def step(x: int) -> int:
        return x

    with pytest.raises(MissingContextError) as info:
        step.submit(1)
    message = str(info.value)
    assert "step.submit() was called outside a flow" in message
    assert "Call the task directly" in message
    assert "@flow" in message


def test_map_outside_a_flow_raises_missing_context(harness: TestHarness) -> None:
    @task
    def step(x: int) -> int:
        return x

    with pytest.raises(MissingContextError) as info:
        step.map([1, 2])
    message = str(info.value)
    assert "step.map() was called outside a flow" in message
    assert "@flow" in message


def test_missing_context_error_is_a_runtime_error() -> None:
    assert issubclass(MissingContextError, RuntimeError)


# wait_for and allow_failure


def test_downstream_of_a_failed_task_is_not_ready(harness: TestHarness) -> None:
    ran: list[Any] = []

    @task
    def upstream() -> int:
        raise ValueError("upstream broke")

    @task
    def downstream(x: int) -> None:
        ran.append(x)

    states: list[State] = []

    @flow
    def pipeline() -> None:
        future = upstream.submit()
        states.append(downstream.submit(future).final_state())

    pipeline()
    (state,) = states
    assert ran == []
    assert state.name == "NotReady"
    assert state.type is StateType.FAILED
    assert "Upstream task run 'upstream-0' (argument 'x') ended in state 'Failed'" in (
        state.message or ""
    )
    assert "allow_failure" in (state.message or "")
    assert isinstance(state.result(raise_on_failure=False), UpstreamTaskError)
    up_run, down_run = harness.task_runs()
    assert down_run.run_count == 0
    assert history_names(down_run) == ["Pending", "NotReady"]
    assert down_run.task_inputs == {"x": [up_run.id]}


def test_direct_call_with_a_failed_state_is_not_ready(harness: TestHarness) -> None:
    ran: list[Any] = []

    @task
    def upstream() -> int:
        raise ValueError("upstream broke")

    @task
    def downstream(x: Any) -> None:
        ran.append(x)

    @flow
    def pipeline() -> None:
        failed = upstream(return_state=True)
        downstream(failed)

    with pytest.raises(UpstreamTaskError, match="did not start"):
        pipeline()
    assert ran == []


def test_wait_for_a_failed_task_is_not_ready(harness: TestHarness) -> None:
    ran: list[int] = []

    @task
    def upstream() -> None:
        raise ValueError("upstream broke")

    @task
    def downstream() -> None:
        ran.append(1)

    states: list[State] = []

    @flow
    def pipeline() -> None:
        future = upstream.submit()
        states.append(downstream.submit(wait_for=[future]).final_state())

    pipeline()
    assert ran == []
    assert states[0].name == "NotReady"
    assert "(argument 'wait_for')" in (states[0].message or "")
    up_run, down_run = harness.task_runs()
    assert down_run.task_inputs == {"__wait_for__": [up_run.id]}


def test_allow_failure_runs_and_receives_the_exception(harness: TestHarness) -> None:
    original = ValueError("upstream broke")
    received: list[Any] = []

    @task
    def upstream() -> int:
        raise original

    @task
    def downstream(x: Any) -> str:
        received.append(x)
        return "ran anyway"

    @flow
    def pipeline() -> str:
        future = upstream.submit()
        return downstream.submit(allow_failure(future)).result()

    assert pipeline() == "ran anyway"
    assert received == [original]
    assert received[0] is original
    up_run, down_run = harness.task_runs()
    assert down_run.task_inputs == {"x": [up_run.id]}


def test_wait_for_with_allow_failure_runs(harness: TestHarness) -> None:
    @task
    def upstream() -> None:
        raise ValueError("upstream broke")

    @task
    def downstream() -> str:
        return "ran"

    @flow
    def pipeline() -> str:
        future = upstream.submit()
        return downstream(wait_for=[allow_failure(future)])

    assert pipeline() == "ran"


def test_wait_for_orders_task_runs(harness: TestHarness) -> None:
    order: list[str] = []

    @task
    def first() -> None:
        time.sleep(0.05)
        order.append("first")

    @task
    def second() -> None:
        order.append("second")

    @flow
    def pipeline() -> None:
        a = first.submit()
        second.submit(wait_for=[a]).wait()

    pipeline()
    assert order == ["first", "second"]


def test_direct_call_with_wait_for(harness: TestHarness) -> None:
    @task
    def first() -> int:
        return 1

    @task
    def second() -> int:
        return 2

    @flow
    def pipeline() -> int:
        a = first.submit()
        return second(wait_for=[a])

    assert pipeline() == 2
    first_run, second_run = harness.task_runs()
    assert second_run.task_inputs == {"__wait_for__": [first_run.id]}


def test_upstream_task_run_ids_are_recorded(harness: TestHarness) -> None:
    @task
    def number(n: int) -> int:
        return n

    @task
    def total(values: list[int], extra: int, plain: int) -> int:
        return sum(values) + extra + plain

    @flow
    def pipeline() -> int:
        a = number.submit(1)
        b = number.submit(2)
        c = number.submit(3)
        return total([a, b], extra=c, plain=4)

    assert pipeline() == 10
    a_run, b_run, c_run, total_run = harness.task_runs()
    assert total_run.task_inputs == {"values": [a_run.id, b_run.id], "extra": [c_run.id]}
    assert total_run.upstream_task_run_ids == {a_run.id, b_run.id, c_run.id}
    assert a_run.task_inputs == {}


def test_futures_are_resolved_to_their_results(harness: TestHarness) -> None:
    @task
    def number(n: int) -> int:
        return n

    @task
    def describe(data: dict[str, Any]) -> dict[str, Any]:
        return data

    @flow
    def pipeline() -> dict[str, Any]:
        return describe({"a": number.submit(1), "b": (number.submit(2),)})

    assert pipeline() == {"a": 1, "b": (2,)}


# Tags


def test_task_tags_land_on_task_runs(harness: TestHarness) -> None:
    @task(tags=["etl", "nightly"])
    def step() -> None:
        pass

    run_in_flow(step)
    assert harness.task_runs()[0].tags == ("etl", "nightly")


def test_tags_context_inside_a_flow_lands_on_task_runs(harness: TestHarness) -> None:
    @task(tags=["etl"])
    def step() -> None:
        pass

    @task
    def untagged() -> None:
        pass

    @flow
    def pipeline() -> None:
        with stratoflow.tags("db", "etl"):
            step()
            untagged.submit().wait()
        untagged()

    pipeline()
    tagged, submitted, after = harness.task_runs()
    assert tagged.tags == ("etl", "db")
    assert submitted.tags == ("db", "etl")
    assert after.tags == ()


def test_tags_context_around_the_flow_call_reaches_task_runs(harness: TestHarness) -> None:
    @task(tags=["own"])
    def step() -> None:
        pass

    @flow
    def pipeline() -> None:
        step()

    with stratoflow.tags("outer"), stratoflow.tags("inner"):
        pipeline()
    assert harness.task_runs()[0].tags == ("own", "outer", "inner")
    assert harness.last_flow_run().tags == ("outer", "inner")


def test_tags_are_visible_from_the_runtime(harness: TestHarness) -> None:
    @task(tags=["a"])
    def step() -> tuple[str, ...]:
        return tuple(current_task_run.tags)

    @flow
    def pipeline() -> tuple[str, ...]:
        with stratoflow.tags("b"):
            return step()

    assert pipeline() == ("a", "b")
