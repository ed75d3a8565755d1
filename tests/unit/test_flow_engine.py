"""The flow run engine: final-state rules, retries, timeouts, parameters, subflows, hooks,
cancellation, tags and persisted results."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

import stratoflow
from stratoflow import flow, task
from stratoflow.exceptions import (
    CancelledRun,
    FailedRun,
    ParameterValidationError,
)
from stratoflow.models import FlowRun
from stratoflow.runs import read_result
from stratoflow.runtime import flow_run as runtime_flow_run
from stratoflow.states import Completed, Failed, Pending, State, StateType
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


class BodyError(Exception):
    pass


@task
def succeed(x: int = 1) -> int:
    return x


@task
def explode() -> None:
    raise BodyError("task exploded")


def _history(run: FlowRun) -> list[str]:
    return [state.name for state in run.state_history]


# Final-state rules


def test_completed_flow_returns_its_value(harness: TestHarness) -> None:
    @flow
    def adds(a: int, b: int) -> int:
        return a + succeed(b)

    assert adds(2, 3) == 5
    run = harness.last_flow_run()
    assert run.state is not None
    assert run.state.type is StateType.COMPLETED
    assert run.state.name == "Completed"
    assert _history(run) == ["Pending", "Running"]
    assert run.run_count == 1
    assert run.parameters == {"a": 2, "b": 3}
    assert run.start_time is not None
    assert run.end_time is not None


def test_raising_flow_fails_and_the_call_reraises_the_original_exception(
    harness: TestHarness,
) -> None:
    error = BodyError("original")

    @flow
    def raises() -> None:
        raise error

    with pytest.raises(BodyError) as info:
        raises()
    assert info.value is error
    run = harness.last_flow_run()
    assert run.state is not None
    assert run.state.is_failed()
    assert run.state.data is error
    assert "BodyError: original" in (run.state.message or "")


def test_return_state_returns_the_final_state(harness: TestHarness) -> None:
    @flow
    def raises() -> None:
        raise BodyError("kept")

    @flow
    def fine() -> int:
        return 7

    failed = raises(return_state=True)
    assert isinstance(failed, State)
    assert failed.is_failed()
    assert isinstance(failed.result(raise_on_failure=False), BodyError)
    with pytest.raises(BodyError, match="kept"):
        failed.result()
    completed = fine(return_state=True)
    assert completed.is_completed()
    assert completed.result() == 7
    assert harness.last_flow_run().state is completed


def test_returning_a_failed_future_fails_the_flow(harness: TestHarness) -> None:
    @flow
    def returns_future() -> Any:
        return explode.submit()

    # Prefect: the future becomes its state, which decides by the aggregate rule.
    state = returns_future(return_state=True)
    assert state.is_failed()
    assert state.message == "1/1 states failed."
    with pytest.raises(BodyError, match="task exploded"):
        returns_future()


def test_returning_a_list_containing_a_failed_future_fails_the_flow(
    harness: TestHarness,
) -> None:
    @flow
    def returns_list() -> list[Any]:
        return [succeed.submit(1), explode.submit()]

    state = returns_list(return_state=True)
    assert state.is_failed()
    assert state.message == "1/2 states failed."
    # Prefect: the data is the returned states; raising gives the first failure's error.
    ok, failed = state.result(raise_on_failure=False)
    assert ok.is_completed() and failed.is_failed()
    with pytest.raises(BodyError):
        state.result()


def test_returning_completed_futures_returns_their_states(harness: TestHarness) -> None:
    @flow
    def returns_futures() -> dict[str, Any]:
        return {"one": succeed.submit(1), "many": [succeed.submit(2), succeed.submit(3)]}

    # Prefect gives back the returned value with each future replaced by its state.
    returned = returns_futures()
    assert returned["one"].result() == 1
    assert [s.result() for s in returned["many"]] == [2, 3]


def test_returning_a_failed_state_makes_it_the_final_state(harness: TestHarness) -> None:
    @flow
    def returns_failed() -> State:
        return Failed("chose to fail")

    state = returns_failed(return_state=True)
    assert state.is_failed()
    assert state.message == "chose to fail"
    assert harness.last_flow_run().state is state
    with pytest.raises(FailedRun, match="chose to fail"):
        returns_failed()


def test_returning_a_completed_state_makes_it_the_final_state(harness: TestHarness) -> None:
    @flow
    def returns_completed() -> State:
        return Completed("all good", data={"n": 1})

    assert returns_completed() == {"n": 1}
    run = harness.last_flow_run()
    assert run.state is not None
    assert run.state.message == "all good"


def test_returning_a_task_state_decides_the_final_state(harness: TestHarness) -> None:
    @flow
    def returns_task_state() -> State:
        return explode(return_state=True)

    # Prefect: a run's state is aggregated ("1/1 states failed."), with it as the data.
    state = returns_task_state(return_state=True)
    assert state.is_failed()
    assert state.data.is_failed()
    assert isinstance(state.data.data, BodyError)


def test_returning_a_state_that_is_not_final_fails_the_flow(harness: TestHarness) -> None:
    @flow
    def returns_pending() -> State:
        return Pending()

    state = returns_pending(return_state=True)
    assert state.is_failed()
    assert "returned a 'Pending' state, which is not final" in (state.message or "")
    assert harness.last_flow_run().state is state


def test_unawaited_failed_submitted_task_does_not_fail_the_flow(harness: TestHarness) -> None:
    @flow
    def fire_and_forget() -> str:
        explode.submit()
        return "done"

    assert fire_and_forget() == "done"
    run = harness.last_flow_run()
    assert run.state is not None
    assert run.state.is_completed()
    [task_run] = harness.task_runs(run.id)
    assert task_run.state is not None
    assert task_run.state.is_failed()


def test_failed_task_awaited_with_result_fails_the_flow(harness: TestHarness) -> None:
    @flow
    def awaits() -> None:
        explode.submit().result()

    with pytest.raises(BodyError, match="task exploded"):
        awaits()
    run = harness.last_flow_run()
    assert run.state is not None
    assert run.state.is_failed()


def test_failed_task_caught_in_the_flow_does_not_fail_it(harness: TestHarness) -> None:
    @flow
    def catches() -> str:
        try:
            explode.submit().result()
        except BodyError:
            return "recovered"
        return "unreachable"

    assert catches() == "recovered"
    assert harness.last_flow_run().state.is_completed()  # type: ignore[union-attr]


def test_failed_task_result_without_raising_does_not_fail_the_flow(
    harness: TestHarness,
) -> None:
    @flow
    def inspects() -> str:
        value = explode.submit().result(raise_on_failure=False)
        return type(value).__name__

    assert inspects() == "BodyError"


def test_failing_direct_task_call_fails_the_flow(harness: TestHarness) -> None:
    @flow
    def calls_directly() -> None:
        explode()

    state = calls_directly(return_state=True)
    assert state.is_failed()
    assert isinstance(state.data, BodyError)


# Flow retries


def test_flow_retries_until_success(harness: TestHarness) -> None:
    seen_run_counts: list[int] = []

    @flow(retries=3, retry_delay_seconds=[2, 5])
    def flaky() -> int:
        seen_run_counts.append(runtime_flow_run.run_count)
        if len(seen_run_counts) < 3:
            raise BodyError(f"attempt {len(seen_run_counts)}")
        return len(seen_run_counts)

    assert flaky() == 3
    run = harness.last_flow_run()
    assert seen_run_counts == [1, 2, 3]
    assert run.run_count == 3
    assert _history(run) == [
        "Pending",
        "Running",
        "AwaitingRetry",
        "Retrying",
        "AwaitingRetry",
        "Retrying",
    ]
    assert run.state is not None
    assert run.state.is_completed()
    assert harness.clock.sleeps == [2.0, 5.0]  # type: ignore[attr-defined]
    assert any("retry 1/3" in message for message in harness.log_messages())


def test_awaiting_retry_is_scheduled_after_the_delay(harness: TestHarness) -> None:
    @flow(retries=1, retry_delay_seconds=30)
    def fails_once() -> None:
        if runtime_flow_run.run_count == 1:
            raise BodyError("first")

    fails_once()
    run = harness.last_flow_run()
    awaiting = run.state_history[2]
    assert awaiting.name == "AwaitingRetry"
    assert awaiting.type is StateType.SCHEDULED
    # The fake clock moved by the delay while sleeping, so "now" is the scheduled time.
    assert awaiting.details["scheduled_time"] == harness.clock.now()
    assert harness.clock.sleeps == [30.0]  # type: ignore[attr-defined]


def test_flow_fails_after_exhausting_retries(harness: TestHarness) -> None:
    calls: list[int] = []

    @flow(retries=2)
    def always_fails() -> None:
        calls.append(1)
        raise BodyError(f"failure {len(calls)}")

    with pytest.raises(BodyError, match="failure 3"):
        always_fails()
    run = harness.last_flow_run()
    assert run.run_count == 3
    assert run.state is not None
    assert run.state.is_failed()
    assert _history(run).count("Retrying") == 2
    assert harness.clock.sleeps == [0.0, 0.0]  # type: ignore[attr-defined]


def test_flow_without_retries_runs_once(harness: TestHarness) -> None:
    calls: list[int] = []

    @flow
    def fails() -> None:
        calls.append(1)
        raise BodyError("once")

    fails(return_state=True)
    assert calls == [1]
    assert "AwaitingRetry" not in _history(harness.last_flow_run())


# Timeout


def test_flow_timeout_ends_in_timed_out_promptly(harness: TestHarness) -> None:
    @flow(timeout_seconds=0.2)
    def too_slow() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.01)

    started = time.monotonic()
    state = too_slow(return_state=True)
    elapsed = time.monotonic() - started
    assert elapsed < 5
    assert state.name == "TimedOut"
    assert state.type is StateType.FAILED
    assert "exceeded its timeout of 0.2 seconds" in (state.message or "")
    with pytest.raises(TimeoutError):
        state.result()
    assert harness.last_flow_run().state is state


def test_flow_within_its_timeout_completes(harness: TestHarness) -> None:
    @flow(timeout_seconds=30)
    def quick() -> int:
        return succeed(4)

    assert quick() == 4


# Parameters


class Config(BaseModel):
    table: str
    limit: int = 10


def test_parameters_are_coerced_from_type_hints(harness: TestHarness) -> None:
    @flow
    def typed(count: int, ratio: float, config: Config) -> tuple[Any, Any, Any]:
        return count, ratio, config

    count, ratio, config = typed("5", "0.5", {"table": "orders", "limit": "3"})
    assert count == 5
    assert ratio == 0.5
    assert isinstance(config, Config)
    assert config == Config(table="orders", limit=3)


def test_runtime_parameters_are_the_validated_ones(harness: TestHarness) -> None:
    @flow
    def typed(count: int) -> Any:
        return runtime_flow_run.parameters["count"]

    assert typed("5") == 5


def test_unannotated_and_default_parameters_pass_through(harness: TestHarness) -> None:
    sentinel = object()

    @flow
    def loose(anything, *, limit: int = 3) -> tuple[Any, int]:  # type: ignore[no-untyped-def]
        return anything, limit

    assert loose(sentinel) == (sentinel, 3)


def test_invalid_parameter_fails_the_run_naming_the_parameter(harness: TestHarness) -> None:
    @flow
    def typed(count: int, name: str = "x") -> int:
        return count

    with pytest.raises(ParameterValidationError) as info:
        typed("many")
    message = str(info.value)
    assert "Flow 'typed' received invalid parameters" in message
    assert "count: Input should be a valid integer" in message
    assert "(got 'many')" in message
    run = harness.last_flow_run()
    assert run.flow_name == "typed"
    assert run.state is not None
    assert run.state.is_failed()
    assert isinstance(run.state.data, ParameterValidationError)
    assert run.parameters == {"count": "many", "name": "x"}
    assert run.run_count == 0  # the body never ran


def test_invalid_nested_model_field_is_named(harness: TestHarness) -> None:
    @flow
    def configured(config: Config) -> None:
        return None

    state = configured({"table": "t", "limit": "lots"}, return_state=True)
    assert state.is_failed()
    assert "config.limit: Input should be a valid integer" in (state.message or "")


def test_unresolvable_type_hint_fails_the_run_with_a_fix(harness: TestHarness) -> None:
    # With `from __future__ import annotations` (this module), hints are strings; a class
    # local to a function cannot be resolved from the flow's module.
    class LocalModel(BaseModel):
        value: int

    @flow
    def uses_local(item: LocalModel) -> None:
        return None

    state = uses_local({"value": 1}, return_state=True)
    assert state.is_failed()
    assert isinstance(state.data, ParameterValidationError)
    message = state.message or ""
    assert "The type hints of flow 'uses-local' could not be resolved" in message
    assert "LocalModel" in message
    assert "validate_parameters=False" in message
    assert harness.last_flow_run().state is state
    assert uses_local.with_options(validate_parameters=False)({"value": 1}) is None


def test_missing_argument_fails_with_a_clear_message(harness: TestHarness) -> None:
    @flow
    def needs(a: int, b: int) -> int:
        return a + b

    with pytest.raises(ParameterValidationError) as info:
        needs(1)
    message = str(info.value)
    assert "flow 'needs' was called with arguments that do not match its signature" in message
    assert "its signature (a: " in message
    assert "missing a required argument: 'b'" in message
    assert harness.last_flow_run().state.is_failed()  # type: ignore[union-attr]


def test_unexpected_argument_fails_with_a_clear_message(harness: TestHarness) -> None:
    @flow
    def needs(a: int) -> int:
        return a

    state = needs(1, c=2, return_state=True)
    assert state.is_failed()
    assert "got an unexpected keyword argument 'c'" in (state.message or "")


def test_validate_parameters_false_skips_coercion(harness: TestHarness) -> None:
    @flow(validate_parameters=False)
    def unchecked(count: int) -> Any:
        return count

    assert unchecked("5") == "5"
    assert unchecked("not a number") == "not a number"


# Subflows


def test_subflow_is_a_child_flow_run(harness: TestHarness) -> None:
    @flow
    def child(x: int) -> int:
        return x * 10

    @flow
    def parent() -> int:
        return child(4) + 1

    assert parent() == 41
    runs = harness.flow_runs()
    [parent_run] = [r for r in runs if r.flow_name == "parent"]
    [child_run] = [r for r in runs if r.flow_name == "child"]
    assert child_run.parent_flow_run_id == parent_run.id
    assert child_run.parent_task_run_id is None
    assert parent_run.parent_flow_run_id is None
    assert child_run.parameters == {"x": 4}
    assert child_run.state is not None
    assert child_run.state.is_completed()
    assert harness.last_flow_run().id == parent_run.id


def test_subflow_called_in_a_task_records_the_task_run(harness: TestHarness) -> None:
    @flow
    def grandchild() -> Any:
        return stratoflow.runtime.task_run.id

    @flow
    def child() -> Any:
        grandchild()
        return stratoflow.runtime.task_run.id

    @task
    def runs_child() -> Any:
        return child()

    @flow
    def parent() -> Any:
        return runs_child.submit().result()

    # Inside the subflow's body there is no current task run.
    assert parent() is None
    runs = {r.flow_name: r for r in harness.flow_runs()}
    [task_run] = harness.task_runs(runs["parent"].id)
    assert runs["child"].parent_flow_run_id == runs["parent"].id
    assert runs["child"].parent_task_run_id == task_run.id
    # A subflow of the subflow belongs to the child, not to the parent's task run.
    assert runs["grandchild"].parent_flow_run_id == runs["child"].id
    assert runs["grandchild"].parent_task_run_id is None


def test_failing_subflow_raises_in_the_parent(harness: TestHarness) -> None:
    @flow
    def child() -> None:
        raise BodyError("child broke")

    @flow
    def parent() -> None:
        child()

    with pytest.raises(BodyError, match="child broke"):
        parent()
    runs = {r.flow_name: r for r in harness.flow_runs()}
    assert runs["child"].state.is_failed()  # type: ignore[union-attr]
    assert runs["parent"].state.is_failed()  # type: ignore[union-attr]


def test_failing_subflow_can_be_caught_with_return_state(harness: TestHarness) -> None:
    @flow
    def child() -> None:
        raise BodyError("child broke")

    @flow
    def parent() -> str:
        return child(return_state=True).name

    assert parent() == "Failed"


# Hooks


def test_hooks_receive_flow_flow_run_and_state(harness: TestHarness) -> None:
    calls: list[tuple[str, Any, str, str]] = []

    def recorder(kind: str) -> Any:
        def hook(flow_: Any, flow_run: FlowRun, state: State) -> None:
            calls.append((kind, flow_, flow_run.id, state.name))

        return hook

    @flow(on_running=recorder("running"), on_completion=[recorder("completion")])
    def succeeds() -> None:
        return None

    succeeds()
    run_id = harness.last_flow_run().id
    assert calls == [
        ("running", succeeds, run_id, "Running"),
        ("completion", succeeds, run_id, "Completed"),
    ]


def test_on_failure_hook_runs_once_after_retries(harness: TestHarness) -> None:
    failures: list[State] = []
    completions: list[State] = []

    @flow(
        retries=1,
        on_failure=lambda f, r, s: failures.append(s),
        on_completion=lambda f, r, s: completions.append(s),
    )
    def fails() -> None:
        raise BodyError("always")

    fails(return_state=True)
    assert len(failures) == 1
    assert failures[0].is_failed()
    assert isinstance(failures[0].data, BodyError)
    assert completions == []


def test_on_running_runs_once_even_with_retries(harness: TestHarness) -> None:
    running: list[str] = []

    @flow(retries=2, on_running=lambda f, r, s: running.append(s.name))
    def fails() -> None:
        raise BodyError("always")

    fails(return_state=True)
    assert running == ["Running"]


def test_on_crashed_hook_for_keyboard_interrupt(harness: TestHarness) -> None:
    crashed: list[State] = []
    failed: list[State] = []

    @flow(on_crashed=lambda f, r, s: crashed.append(s), on_failure=lambda f, r, s: failed.append(s))
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    run = harness.last_flow_run()
    assert run.state is not None
    assert run.state.name == "Crashed"
    assert run.state.type is StateType.CRASHED
    assert "KeyboardInterrupt" in (run.state.message or "")
    assert [s.name for s in crashed] == ["Crashed"]
    assert failed == []


def test_exception_in_a_hook_is_logged_and_the_state_is_kept(harness: TestHarness) -> None:
    after: list[str] = []

    def broken_hook(flow_: Any, flow_run: FlowRun, state: State) -> None:
        raise RuntimeError("hook broke")

    @flow(on_completion=[broken_hook, lambda f, r, s: after.append(s.name)])
    def fine() -> int:
        return 3

    assert fine() == 3
    run = harness.last_flow_run()
    assert run.state is not None
    assert run.state.is_completed()
    assert after == ["Completed"]  # later hooks still run
    messages = harness.log_messages()
    [logged] = [m for m in messages if "error was encountered" in m]
    assert "An error was encountered while running hook 'broken_hook'" in logged
    assert "RuntimeError: hook broke" in logged


def test_exception_in_on_failure_hook_keeps_the_failure(harness: TestHarness) -> None:
    def broken_hook(flow_: Any, flow_run: FlowRun, state: State) -> None:
        raise RuntimeError("hook broke")

    @flow(on_failure=broken_hook)
    def fails() -> None:
        raise BodyError("body broke")

    with pytest.raises(BodyError, match="body broke"):
        fails()
    assert harness.last_flow_run().state.is_failed()  # type: ignore[union-attr]


# Cancellation


@task
def tick(i: int) -> int:
    time.sleep(0.002)
    return i


def test_cancel_flow_run_from_another_thread(harness: TestHarness) -> None:
    started = threading.Event()
    run_ids: list[str] = []
    cancellations: list[State] = []
    iterations: list[int] = []

    @flow(on_cancellation=lambda f, r, s: cancellations.append(s))
    def loops() -> None:
        run_ids.append(runtime_flow_run.id)
        started.set()
        for i in range(5000):  # bounded: the test fails rather than hangs
            tick(i)
            iterations.append(i)

    def canceller() -> None:
        assert started.wait(10)
        time.sleep(0.05)
        requested.append(stratoflow.cancel_flow_run(run_ids[0]))

    requested: list[State] = []
    thread = threading.Thread(target=canceller)
    thread.start()
    state = loops(return_state=True)
    thread.join(10)
    assert requested[0].name == "Cancelling"
    assert state.type is StateType.CANCELLED
    assert state.name == "Cancelled"
    assert len(iterations) < 5000
    run = harness.last_flow_run()
    assert run.state is state
    assert "Cancelling" in _history(run)
    assert [s.name for s in cancellations] == ["Cancelled"]
    with pytest.raises(CancelledRun):
        state.result()


@task
def cancel_own_flow() -> None:
    stratoflow.cancel_flow_run(runtime_flow_run.id)


def test_cancellation_seen_through_a_future_ends_cancelled_not_failed(
    harness: TestHarness,
) -> None:
    failures: list[State] = []

    @flow(retries=2, on_failure=lambda f, r, s: failures.append(s))
    def cancels_itself() -> int:
        cancel_own_flow.submit().wait()
        # This task run does not start: the flow is being cancelled. Its result raises.
        return succeed.submit(1).result()

    state = cancels_itself(return_state=True)
    assert state.type is StateType.CANCELLED
    run = harness.last_flow_run()
    assert run.run_count == 1  # a cancelled run is not retried
    assert failures == []
    task_states = [t.state.name for t in harness.task_runs(run.id)]  # type: ignore[union-attr]
    assert task_states == ["Completed", "Cancelled"]


def test_no_task_runs_start_after_cancellation(harness: TestHarness) -> None:
    @flow
    def cancels_then_calls() -> None:
        cancel_own_flow()
        succeed(2)

    state = cancels_then_calls(return_state=True)
    assert state.is_cancelled()
    [only] = harness.task_runs(harness.last_flow_run().id)
    assert only.task_name == "cancel_own_flow"


# Tags


def test_tags_from_the_option_and_the_context_land_on_the_flow_run(
    harness: TestHarness,
) -> None:
    @flow(tags=["etl", "shared"])
    def tagged() -> None:
        return None

    with stratoflow.tags("nightly", "shared"), stratoflow.tags("inner"):
        tagged()
    assert harness.last_flow_run().tags == ("etl", "shared", "nightly", "inner")
    tagged()
    assert harness.last_flow_run().tags == ("etl", "shared")


def test_runtime_flow_run_tags(harness: TestHarness) -> None:
    @flow(tags=["a"])
    def tagged() -> Any:
        return runtime_flow_run.tags

    with stratoflow.tags("b"):
        assert tagged() == ("a", "b")


# Persisted results


def test_persisted_flow_result_loads_from_the_result_record(harness: TestHarness) -> None:
    @flow(persist_result=True)
    def persisted(n: int) -> dict[str, Any]:
        return {"n": n, "items": [1, 2]}

    assert persisted(3) == {"n": 3, "items": [1, 2]}
    run = harness.last_flow_run()
    assert run.result_record is not None
    assert run.result_record.load() == {"n": 3, "items": [1, 2]}
    assert run.result_record.store.exists(run.result_record.key)
    assert run.state is not None
    assert run.state.result_record is run.result_record
    assert read_result(run) == {"n": 3, "items": [1, 2]}


def test_persisted_non_json_result_uses_cloudpickle(harness: TestHarness) -> None:
    @flow(persist_result=True)
    def persisted() -> set[int]:
        return {1, 2}

    persisted()
    record = harness.last_flow_run().result_record
    assert record is not None
    assert record.serializer == "cloudpickle"
    assert record.load() == {1, 2}


def test_unpersisted_flow_has_no_result_record(harness: TestHarness) -> None:
    @flow
    def plain() -> int:
        return 1

    plain()
    assert harness.last_flow_run().result_record is None


def test_unserializable_result_fails_the_flow_clearly(harness: TestHarness) -> None:
    @flow(persist_result=True, result_serializer="json")
    def bad_result() -> object:
        return object()

    state = bad_result(return_state=True)
    assert state.is_failed()
    assert "could not be persisted" in (state.message or "")


# Logs of the lifecycle


def test_flow_run_logs_its_beginning_and_end(harness: TestHarness) -> None:
    @flow(flow_run_name="named-run")
    def logged() -> None:
        return None

    logged()
    messages = harness.log_messages()
    assert messages[0] == "Beginning flow run 'named-run' for flow 'logged'"
    assert messages[-1] == "Finished in state Completed()"
