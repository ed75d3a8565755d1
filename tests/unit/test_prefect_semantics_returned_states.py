"""What a run's return value makes of its final state, and what a call gives back, as in
Prefect 3 (`return_value_to_state`, `get_state_exception`, the engines' `result()`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stratoflow import flow, task
from stratoflow.exceptions import CancelledRun, FailedRun, OptionError
from stratoflow.states import Cancelled, Completed, Failed, State, StateType
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


class Boom(Exception):
    pass


@task
def ok(x: int = 1) -> int:
    return x


@task
def fails() -> None:
    raise Boom("task failed")


@task
def returns_failed() -> State:
    return Failed("chose to fail")


# 1. A task that returns a state


def test_a_task_returning_a_failed_state_ends_in_that_state(harness: TestHarness) -> None:
    @flow
    def pipeline() -> str:
        state = returns_failed()
        # Prefect gives the returned State back to the caller; nothing is raised.
        assert isinstance(state, State) and state.is_failed()
        return "went on"

    assert pipeline() == "went on"
    [task_run] = harness.task_runs()
    assert task_run.state is not None
    assert task_run.state.is_failed()
    assert task_run.state.message == "chose to fail"
    assert harness.last_flow_run().state.is_completed()  # type: ignore[union-attr]


def test_a_task_returning_a_failed_state_with_return_state(harness: TestHarness) -> None:
    @flow
    def pipeline() -> None:
        state = returns_failed(return_state=True)
        assert state.is_failed() and state.message == "chose to fail"
        with pytest.raises(FailedRun, match="chose to fail"):
            state.result()

    pipeline()


def test_a_submitted_task_returning_a_failed_state_raises_from_its_future(
    harness: TestHarness,
) -> None:
    @flow
    def pipeline() -> None:
        future = returns_failed.submit()
        with pytest.raises(FailedRun, match="chose to fail"):
            future.result()
        assert isinstance(future.result(raise_on_failure=False), FailedRun)

    pipeline()


def test_a_returned_failed_state_is_retried(harness: TestHarness) -> None:
    attempts: list[int] = []

    @task(retries=3)
    def flaky() -> Any:
        attempts.append(1)
        return True if len(attempts) == 2 else Failed("oops", data=ValueError("oops"))

    @flow
    def pipeline() -> Any:
        return flaky()

    assert pipeline() is True
    assert len(attempts) == 2


def test_a_returned_failed_state_runs_on_failure_hooks(harness: TestHarness) -> None:
    seen: list[str] = []

    @task(on_failure=[lambda task, run, state: seen.append(state.name)])
    def chooses() -> State:
        return Failed("no")

    chooses()
    assert seen == ["Failed"]


def test_failed_state_data_is_the_result_without_raising(harness: TestHarness) -> None:
    @flow
    def returns_data_state() -> State:
        return State(
            type=StateType.FAILED, name="Failed", message="m", data="hello!", has_data=True
        )

    state = returns_data_state(return_state=True)
    assert state.is_failed()
    assert state.result(raise_on_failure=False) == "hello!"
    with pytest.raises(FailedRun, match="hello!"):
        state.result()


def test_a_flow_returning_nothing_completes_although_a_task_failed(
    harness: TestHarness,
) -> None:
    @flow
    def pipeline() -> None:
        returns_failed()
        fails(return_state=True)

    assert pipeline(return_state=True).is_completed()


# The aggregate rule for returned run states


def test_returned_task_states_decide_by_the_aggregate_rule(harness: TestHarness) -> None:
    @flow
    def pipeline() -> tuple[State, State, State]:
        return fails(return_state=True), fails(return_state=True), ok(return_state=True)

    state = pipeline(return_state=True)
    assert state.is_failed()
    assert state.message == "2/3 states failed."
    first, second, third = state.result(raise_on_failure=False)
    assert first.is_failed() and second.is_failed() and third.is_completed()
    with pytest.raises(Boom):
        state.result()
    # A call gives back the returned states as they are (Prefect's `result()`).
    returned = pipeline()
    assert [s.type for s in returned] == [StateType.FAILED, StateType.FAILED, StateType.COMPLETED]


def test_one_of_two_returned_states_failed(harness: TestHarness) -> None:
    @flow
    def pipeline() -> list[Any]:
        return [ok.submit(), fails.submit()]

    state = pipeline(return_state=True)
    assert state.is_failed()
    assert state.message == "1/2 states failed."


def test_all_returned_states_completed(harness: TestHarness) -> None:
    @flow
    def pipeline() -> list[Any]:
        return [ok.submit(1), ok.submit(2)]

    state = pipeline(return_state=True)
    assert state.is_completed()
    assert state.message == "All states completed."
    assert [s.result() for s in pipeline()] == [1, 2]


def test_a_returned_cancelled_state_cancels_the_flow(harness: TestHarness) -> None:
    @task
    def cancel() -> State:
        return Cancelled()

    @flow
    def pipeline() -> tuple[Any, ...]:
        return cancel.submit(), ok.submit(), fails.submit()

    state = pipeline(return_state=True)
    assert state.is_cancelled()
    assert state.message == "1/3 states cancelled."
    with pytest.raises(CancelledRun):
        state.result()


# 2. A mix of values and states does not decide the final state


def test_a_mix_of_a_value_and_a_failed_state_completes(harness: TestHarness) -> None:
    @flow
    def pipeline() -> tuple[str, State]:
        return "bar", fails(return_state=True)

    state = pipeline(return_state=True)
    assert state.is_completed()
    value, failed = state.result()
    assert value == "bar" and failed.is_failed()


def test_a_dict_of_states_does_not_decide_the_final_state(harness: TestHarness) -> None:
    @flow
    def pipeline() -> dict[str, Any]:
        return {"a": fails.submit()}

    assert pipeline(return_state=True).is_completed()


# 4. A returned generator


def test_a_returned_generator_is_consumed_into_the_state_data(harness: TestHarness) -> None:
    @flow
    def pipeline() -> Any:
        return (i * 2 for i in range(3))

    state = pipeline(return_state=True)
    assert state.is_completed()
    assert state.result() == [0, 2, 4]
    # Prefect gives back the generator object itself, already consumed.
    assert list(pipeline()) == []


def test_a_task_returning_a_generator_stores_a_list(harness: TestHarness) -> None:
    @task
    def numbers() -> Any:
        return iter_numbers()

    def iter_numbers() -> Iterator[int]:
        yield from (1, 2)

    @flow
    def pipeline() -> Any:
        return numbers.submit().result()

    assert pipeline() == [1, 2]


# 5. A returned state and what a call gives back


def test_a_returned_user_state_is_the_final_state_and_a_call_gives_its_result(
    harness: TestHarness,
) -> None:
    @flow
    def pipeline() -> State:
        return Completed("fine", data={"n": 1})

    state = pipeline(return_state=True)
    assert state.is_completed() and state.message == "fine"
    assert pipeline() == {"n": 1}


def test_a_returned_task_state_is_given_back_to_the_caller(harness: TestHarness) -> None:
    @flow
    def pipeline() -> State:
        return ok(5, return_state=True)

    returned = pipeline()
    assert isinstance(returned, State)
    assert returned.result() == 5
    state = pipeline(return_state=True)
    assert state.message == "All states completed."


def test_a_returned_future_is_given_back_as_its_state(harness: TestHarness) -> None:
    @flow
    def pipeline() -> Any:
        return ok.submit(7)

    returned = pipeline()
    assert isinstance(returned, State)
    assert returned.result() == 7


def test_a_subflow_returning_a_failed_task_state_fails_the_parent(harness: TestHarness) -> None:
    @flow
    def child() -> State:
        return fails(return_state=True)

    @flow
    def parent() -> tuple[State, State]:
        return child(return_state=True), ok(return_state=True)

    state = parent(return_state=True)
    assert state.is_failed()
    assert state.message == "1/2 states failed."


def test_state_str_is_prefects_log_form() -> None:
    assert str(Completed()) == "Completed()"
    assert str(Failed("boom")) == "Failed('boom')"
    assert str(State(type=StateType.COMPLETED, name="Cached")) == "Cached(type=COMPLETED)"


def test_a_generator_function_is_refused_when_decorated() -> None:
    # Prefect runs generator flows and tasks step by step; stratoflow needs one result.
    def numbers() -> Iterator[int]:
        yield 1

    with pytest.raises(OptionError, match="is a generator; flows are functions"):
        flow(numbers)
    with pytest.raises(OptionError, match="is a generator; tasks are functions"):
        task(numbers)
