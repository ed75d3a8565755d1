"""StratoFuture, futures as task arguments, `task.map()`, `wait` and `as_completed`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import stratoflow
from stratoflow import StratoFuture, flow, task, unmapped
from stratoflow.exceptions import MappingLengthMismatch, MissingContextError
from stratoflow.futures import StratoFutureList
from stratoflow.states import State
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


class TaskError(Exception):
    pass


@task
def double(x: int) -> int:
    return 2 * x


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def fail(message: str = "task failed") -> None:
    raise TaskError(message)


@task
def wait_on(event: threading.Event, value: Any) -> Any:
    if not event.wait(10):
        raise TimeoutError("event never set")
    return value


# StratoFuture


def test_submit_returns_a_future_with_result_state_and_task_run_id(
    harness: TestHarness,
) -> None:
    seen: dict[str, Any] = {}

    @flow
    def submits() -> None:
        future = double.submit(21)
        seen["future"] = future
        future.wait()
        seen["done"] = future.done()
        seen["state"] = future.state
        seen["result"] = future.result()
        seen["result_with_timeout"] = future.result(timeout=5)

    submits()
    future = seen["future"]
    assert isinstance(future, StratoFuture)
    assert seen["done"] is True
    assert isinstance(seen["state"], State)
    assert seen["state"].is_completed()
    assert seen["result"] == 42
    assert seen["result_with_timeout"] == 42
    [task_run] = harness.task_runs()
    assert future.task_run_id == task_run.id
    assert future.task_run is task_run
    assert harness.backend.read_task_run(future.task_run_id).state.is_completed()  # type: ignore[union-attr]


def test_result_of_a_failed_task_raises_or_returns_the_exception(harness: TestHarness) -> None:
    @flow
    def submits() -> tuple[Any, Any]:
        future = fail.submit("bad input")
        with pytest.raises(TaskError, match="bad input"):
            future.result()
        # (A returned failed state would fail the flow, so return its name.)
        return future.result(raise_on_failure=False), future.state.name

    value, state_name = submits()
    assert isinstance(value, TaskError)
    assert str(value) == "bad input"
    assert state_name == "Failed"


def test_future_state_before_completion_is_not_final(harness: TestHarness) -> None:
    release = threading.Event()
    seen: dict[str, Any] = {}

    @flow
    def submits() -> Any:
        future = wait_on.submit(release, "v")
        seen["state_before"] = future.state
        seen["done_before"] = future.done()
        release.set()
        return future.result(timeout=10)

    assert submits() == "v"
    assert not seen["state_before"].is_final()
    assert seen["done_before"] is False


def test_result_with_short_timeout_on_a_slow_task_raises_timeout_error(
    harness: TestHarness,
) -> None:
    release = threading.Event()

    @flow
    def submits() -> Any:
        future = wait_on.submit(release, "late")
        try:
            with pytest.raises(TimeoutError):
                future.result(timeout=0.01)
            with pytest.raises(TimeoutError):
                future.final_state(timeout=0.01)
        finally:
            release.set()
        return future.result(timeout=10)

    assert submits() == "late"


def test_wait_with_timeout_returns_without_the_result(harness: TestHarness) -> None:
    release = threading.Event()

    @flow
    def submits() -> bool:
        future = wait_on.submit(release, 1)
        started = time.monotonic()
        future.wait(timeout=0.01)
        assert time.monotonic() - started < 5
        done = future.done()
        release.set()
        return done

    assert submits() is False


def test_add_done_callback_receives_the_future(harness: TestHarness) -> None:
    called: list[Any] = []

    submitted: list[Any] = []

    @flow
    def submits() -> None:
        future = double.submit(1)
        submitted.append(future)
        future.add_done_callback(called.append)
        future.wait()

    submits()
    assert called == submitted
    assert called[0].result() == 2


def test_submit_outside_a_flow_raises(harness: TestHarness) -> None:
    with pytest.raises(MissingContextError, match=r"double.submit\(\) was called outside a flow"):
        double.submit(1)
    with pytest.raises(MissingContextError, match=r"double.map\(\) was called outside a flow"):
        double.map([1])


# Futures as arguments


def test_futures_passed_as_arguments_resolve_and_record_upstream(
    harness: TestHarness,
) -> None:
    ids: dict[str, str] = {}

    @flow
    def pipeline() -> int:
        first = double.submit(1)
        second = double.submit(first)
        total = add.submit(first, y=second)
        ids.update(first=first.task_run_id, second=second.task_run_id, total=total.task_run_id)
        return total.result()

    assert pipeline() == 6
    backend = harness.backend
    assert backend.read_task_run(ids["first"]).task_inputs == {}
    assert backend.read_task_run(ids["second"]).task_inputs == {"x": [ids["first"]]}
    total_run = backend.read_task_run(ids["total"])
    assert total_run.task_inputs == {"x": [ids["first"]], "y": [ids["second"]]}
    assert total_run.upstream_task_run_ids == {ids["first"], ids["second"]}


def test_futures_inside_collections_resolve(harness: TestHarness) -> None:
    @task
    def total(values: list[int], extra: dict[str, int]) -> int:
        return sum(values) + sum(extra.values())

    @flow
    def pipeline() -> tuple[int, list[str]]:
        parts = [double.submit(i) for i in range(3)]
        result = total.submit(parts, {"a": double.submit(10)})
        return result.result(), sorted(result.task_run.task_inputs)

    value, keys = pipeline()
    assert value == 0 + 2 + 4 + 20
    assert keys == ["extra", "values"]


def test_direct_call_with_a_future_argument(harness: TestHarness) -> None:
    @flow
    def pipeline() -> int:
        return double(double.submit(3))

    assert pipeline() == 12


def test_wait_for_records_the_dependency(harness: TestHarness) -> None:
    order: list[str] = []
    lock = threading.Lock()

    @task
    def record(name: str) -> None:
        if name == "first":
            time.sleep(0.05)
        with lock:
            order.append(name)

    @flow
    def pipeline() -> str:
        first = record.submit("first")
        second = record.submit("second", wait_for=[first])
        second.wait()
        return first.task_run_id

    first_id = pipeline()
    assert order == ["first", "second"]
    second_run = harness.task_runs()[1]
    assert second_run.task_inputs == {"__wait_for__": [first_id]}


def test_failed_upstream_stops_the_downstream(harness: TestHarness) -> None:
    @flow
    def pipeline() -> State:
        downstream = double.submit(fail.submit())
        downstream.wait()
        return downstream.state

    state = pipeline(return_state=True)
    assert state.is_failed()
    upstream, downstream = harness.task_runs()
    assert upstream.state.is_failed()  # type: ignore[union-attr]
    assert downstream.state.name == "NotReady"  # type: ignore[union-attr]
    assert "fail-0" in downstream.state.message  # type: ignore[union-attr, operator]


def test_allow_failure_runs_the_downstream_with_the_exception(harness: TestHarness) -> None:
    @task
    def describe(value: Any) -> str:
        return type(value).__name__

    @flow
    def pipeline() -> str:
        return describe.submit(stratoflow.allow_failure(fail.submit())).result()

    assert pipeline() == "TaskError"


# map


def test_map_runs_one_task_per_element(harness: TestHarness) -> None:
    @flow
    def mapped() -> list[int]:
        futures = double.map([1, 2, 3])
        assert isinstance(futures, StratoFutureList)
        assert all(isinstance(f, StratoFuture) for f in futures)
        return futures.result()

    assert mapped() == [2, 4, 6]
    assert [t.name for t in harness.task_runs()] == ["double-0", "double-1", "double-2"]


def test_map_with_unmapped_and_static_arguments(harness: TestHarness) -> None:
    @task
    def combine(x: int, offsets: list[int], scale: int) -> int:
        return (x + sum(offsets)) * scale

    @flow
    def mapped() -> list[int]:
        return combine.map([1, 2], unmapped([10, 20]), scale=2).result()

    assert mapped() == [62, 64]


def test_map_broadcasts_strings_and_dicts(harness: TestHarness) -> None:
    @task
    def greet(name: str, greeting: str, options: dict[str, str]) -> str:
        return f"{greeting} {name}{options['suffix']}"

    @flow
    def mapped() -> list[str]:
        return greet.map(("ann", "bob"), "hello", {"suffix": "!"}).result()

    assert mapped() == ["hello ann!", "hello bob!"]


def test_map_zips_several_iterables(harness: TestHarness) -> None:
    @flow
    def mapped() -> list[int]:
        return add.map([1, 2, 3], range(10, 13)).result()

    assert mapped() == [11, 13, 15]


def test_map_with_unequal_lengths_raises_a_helpful_error(harness: TestHarness) -> None:
    @flow
    def mapped() -> None:
        add.map([1, 2], [1, 2, 3])

    with pytest.raises(MappingLengthMismatch) as info:
        mapped()
    message = str(info.value)
    assert "add.map() received iterables of different lengths (x=2, y=3)" in message
    assert "wrap arguments meant for every run in unmapped()" in message
    assert harness.task_runs() == []


def test_map_over_the_list_result_of_a_future(harness: TestHarness) -> None:
    @task
    def numbers() -> list[int]:
        return [4, 5, 6]

    @flow
    def mapped() -> list[int]:
        return double.map(numbers.submit()).result()

    assert mapped() == [8, 10, 12]


def test_map_over_futures(harness: TestHarness) -> None:
    @flow
    def mapped() -> list[int]:
        firsts = double.map([1, 2])
        return double.map(firsts).result()

    assert mapped() == [4, 8]
    runs = harness.task_runs()
    assert runs[2].task_inputs == {"x": [runs[0].id]}
    assert runs[3].task_inputs == {"x": [runs[1].id]}


def test_map_over_an_empty_list_submits_nothing(harness: TestHarness) -> None:
    @flow
    def mapped() -> list[int]:
        return double.map([]).result()

    assert mapped() == []
    assert harness.task_runs() == []


def test_map_result_with_a_failure(harness: TestHarness) -> None:
    @task
    def fail_on_two(x: int) -> int:
        if x == 2:
            raise TaskError("two")
        return x

    @flow
    def mapped() -> list[Any]:
        futures = fail_on_two.map([1, 2, 3])
        with pytest.raises(TaskError, match="two"):
            futures.result()
        return futures.result(raise_on_failure=False)

    one, two, three = mapped()
    assert (one, three) == (1, 3)
    assert isinstance(two, TaskError)


# wait and as_completed


def test_wait_returns_done_and_not_done(harness: TestHarness) -> None:
    release = threading.Event()

    @flow
    def waits() -> tuple[int, int, int, int]:
        quick = [double.submit(i) for i in range(3)]
        slow = wait_on.submit(release, "slow")
        for future in quick:
            future.wait()
        first = stratoflow.wait([*quick, slow], timeout=0.05)
        release.set()
        second = stratoflow.wait([*quick, slow])
        assert first.not_done == {slow}
        assert first.done == set(quick)
        return len(first.done), len(first.not_done), len(second.done), len(second.not_done)

    assert waits() == (3, 1, 4, 0)


def test_as_completed_yields_in_completion_order(harness: TestHarness) -> None:
    events = {name: threading.Event() for name in "abc"}

    @flow
    def completes() -> list[str]:
        futures = [wait_on.submit(events[name], name) for name in "abc"]
        release_order = iter("bca")
        events[next(release_order)].set()
        seen = []
        for future in stratoflow.as_completed(futures, timeout=10):
            seen.append(future.result())
            following = next(release_order, None)
            if following is not None:
                events[following].set()
        return seen

    assert completes() == ["b", "c", "a"]


def test_as_completed_timeout(harness: TestHarness) -> None:
    release = threading.Event()

    @flow
    def completes() -> None:
        future = wait_on.submit(release, 1)
        try:
            with pytest.raises(TimeoutError):
                list(stratoflow.as_completed([future], timeout=0.05))
        finally:
            release.set()

    completes()
    assert harness.last_flow_run().state.is_completed()  # type: ignore[union-attr]


def test_prefect_style_import_paths_for_wait_and_as_completed() -> None:
    from stratoflow.futures import as_completed, wait

    assert wait is stratoflow.wait
    assert as_completed is stratoflow.as_completed
