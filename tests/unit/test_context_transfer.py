"""`stratoflow.context.with_context`, `serialize_context` and `hydrated_context` (Prefect
3's): a function run in another thread or process inside the run context it was wrapped
in."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from stratoflow import flow, get_run_logger, tags, task
from stratoflow._tags import current_tags
from stratoflow.context import (
    FlowRunContext,
    TaskRunContext,
    hydrated_context,
    serialize_context,
    with_context,
)
from stratoflow.exceptions import MissingContextError
from stratoflow.runtime import flow_run as runtime_flow_run
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


def describe(item: int) -> dict[str, Any]:
    """Runs where it is sent (a thread, a process): what run context it finds there."""
    get_run_logger().info("item %s", item)
    flow_ctx = FlowRunContext.get()
    task_ctx = TaskRunContext.get()
    return {
        "flow_run_id": flow_ctx.flow_run.id if flow_ctx else None,
        "task_run_id": task_ctx.task_run.id if task_ctx else None,
        "runtime_flow_run_id": runtime_flow_run.id,
        "parameters": flow_ctx.parameters if flow_ctx else None,
        "tags": current_tags(),
        "item": item,
    }


def test_threads_run_inside_the_task_run(harness: TestHarness) -> None:
    @task
    def fan_out(n: int) -> list[dict[str, Any]]:
        with ThreadPoolExecutor(max_workers=3) as pool:
            return list(pool.map(with_context(describe), range(n)))

    @flow
    def pipeline(n: int) -> list[dict[str, Any]]:
        with tags("nightly"):
            return fan_out(n)

    seen = pipeline(4)
    run = harness.last_flow_run()
    (task_run,) = harness.task_runs()
    assert {s["flow_run_id"] for s in seen} == {run.id}
    assert {s["runtime_flow_run_id"] for s in seen} == {run.id}
    assert {s["task_run_id"] for s in seen} == {task_run.id}
    assert all(s["tags"] == ("nightly",) and s["parameters"] == {"n": 4} for s in seen)
    logged = [e for e in harness.logs() if e.message.startswith("item ")]
    assert sorted(e.message for e in logged) == [f"item {i}" for i in range(4)]
    assert {e.task_run_id for e in logged} == {task_run.id}


def test_without_it_a_thread_has_no_run_context(harness: TestHarness) -> None:
    @flow
    def pipeline() -> str:
        errors: list[BaseException] = []

        def bare() -> None:
            try:
                get_run_logger()
            except MissingContextError as exc:
                errors.append(exc)

        thread = threading.Thread(target=bare)
        thread.start()
        thread.join()
        return type(errors[0]).__name__

    assert pipeline() == "MissingContextError"


def test_a_process_gets_the_flow_run_task_run_parameters_and_tags(harness: TestHarness) -> None:
    @task
    def fan_out(n: int) -> list[dict[str, Any]]:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            return pool.map(with_context(describe), range(n))

    @flow
    def pipeline(n: int) -> list[dict[str, Any]]:
        with tags("nightly"):
            return fan_out(n)

    seen = pipeline(2)
    run = harness.last_flow_run()
    (task_run,) = harness.task_runs()
    assert [s["item"] for s in seen] == [0, 1]
    for s in seen:
        assert s["flow_run_id"] == s["runtime_flow_run_id"] == run.id
        assert s["task_run_id"] == task_run.id
        assert s["parameters"] == {"n": 2} and s["tags"] == ("nightly",)


def test_unpickled_in_this_process_it_hydrates_with_this_processs_services(
    harness: TestHarness,
) -> None:
    @flow
    def pipeline() -> dict[str, Any]:
        wrapped = pickle.loads(pickle.dumps(with_context(describe)))
        return wrapped(7)  # type: ignore[no-any-return]

    seen = pipeline()
    run = harness.last_flow_run()
    assert seen["flow_run_id"] == run.id and seen["task_run_id"] is None
    assert "item 7" in harness.log_messages()  # written through the hydrated context


def test_serialize_and_hydrate(harness: TestHarness) -> None:
    assert serialize_context() == {
        "flow_run_context": {},
        "task_run_context": {},
        "tags_context": {},
    }
    with hydrated_context(None), hydrated_context({}):
        assert FlowRunContext.get() is None

    @flow
    def pipeline() -> dict[str, Any]:
        return serialize_context()

    data = pipeline()
    run = harness.last_flow_run()
    assert data["flow_run_context"]["flow_run"].id == run.id
    assert data["flow_run_context"]["flow_run"].state_history == []
    with hydrated_context(data):
        hydrated = FlowRunContext.get()
        assert hydrated is not None and hydrated.flow_run.id == run.id
        assert TaskRunContext.get() is None
    assert FlowRunContext.get() is None


def test_a_context_that_does_not_pickle_says_so(harness: TestHarness) -> None:
    @flow
    def pipeline(lock: Any) -> None:
        wrapped = with_context(describe)
        assert "with_context(describe)" in repr(wrapped)
        with pytest.raises(TypeError, match="cannot be sent to another process"):
            pickle.dumps(wrapped)

    pipeline(threading.Lock())
