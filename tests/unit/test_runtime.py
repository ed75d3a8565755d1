"""`stratoflow.runtime.flow_run` and `stratoflow.runtime.task_run` inside and outside runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import stratoflow
from stratoflow import flow, task
from stratoflow.runtime import flow_run, task_run
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


def _flow_view() -> dict[str, Any]:
    return {
        "id": flow_run.id,
        "name": flow_run.name,
        "flow_name": flow_run.flow_name,
        "parameters": flow_run.parameters,
        "run_count": flow_run.run_count,
        "tags": flow_run.tags,
        "parent_flow_run_id": flow_run.parent_flow_run_id,
    }


def _task_view() -> dict[str, Any]:
    return {
        "id": task_run.id,
        "name": task_run.name,
        "task_name": task_run.task_name,
        "parameters": task_run.parameters,
        "run_count": task_run.run_count,
        "tags": task_run.tags,
    }


def test_flow_run_inside_a_flow(harness: TestHarness) -> None:
    @flow(flow_run_name="runtime-{x}", tags=["t1"])
    def reads_runtime(x: int, y: str = "d") -> dict[str, Any]:
        return {"flow": _flow_view(), "task": _task_view()}

    views = reads_runtime("7")
    run = harness.last_flow_run()
    assert views["flow"] == {
        "id": run.id,
        "name": "runtime-7",
        "flow_name": "reads-runtime",
        "parameters": {"x": 7, "y": "d"},
        "run_count": 1,
        "tags": ("t1",),
        "parent_flow_run_id": None,
    }
    # In the flow's body there is no task run.
    assert views["task"] == {
        "id": None,
        "name": None,
        "task_name": None,
        "parameters": {},
        "run_count": None,
        "tags": (),
    }


def test_task_run_and_flow_run_inside_a_task(harness: TestHarness) -> None:
    @task(task_run_name="reader-{n}", tags=["tt"])
    def reads_runtime(n: int) -> dict[str, Any]:
        return {"flow": _flow_view(), "task": _task_view()}

    @flow(flow_run_name="outer")
    def runs_tasks() -> list[dict[str, Any]]:
        return [reads_runtime(1), reads_runtime.submit(2).result()]

    direct, submitted = runs_tasks()
    run = harness.last_flow_run()
    task_runs = {t.name: t for t in harness.task_runs(run.id)}
    for view, n in ((direct, 1), (submitted, 2)):
        assert view["flow"]["id"] == run.id
        assert view["flow"]["name"] == "outer"
        assert view["flow"]["flow_name"] == "runs-tasks"
        assert view["flow"]["parameters"] == {}
        assert view["task"] == {
            "id": task_runs[f"reader-{n}"].id,
            "name": f"reader-{n}",
            "task_name": "reads_runtime",
            "parameters": {"n": n},
            "run_count": 1,
            "tags": ("tt",),
        }


def test_run_counts_follow_retries(harness: TestHarness) -> None:
    task_counts: list[int] = []
    flow_counts: list[int] = []

    @task(retries=2)
    def flaky_task() -> int:
        task_counts.append(task_run.run_count)
        if len(task_counts) < 3:
            raise RuntimeError("again")
        return task_run.run_count

    @flow(retries=1)
    def flaky_flow() -> int:
        flow_counts.append(flow_run.run_count)
        if len(flow_counts) < 2:
            raise RuntimeError("again")
        return flaky_task()

    assert flaky_flow() == 3
    assert task_counts == [1, 2, 3]
    assert flow_counts == [1, 2]


def test_task_parameters_are_the_resolved_values(harness: TestHarness) -> None:
    @task
    def produce() -> int:
        return 5

    @task
    def consume(value: int) -> dict[str, Any]:
        return task_run.parameters

    @flow
    def pipeline() -> dict[str, Any]:
        return consume.submit(produce.submit()).result()

    assert pipeline() == {"value": 5}


def test_runtime_in_a_subflow(harness: TestHarness) -> None:
    @flow
    def child(z: int) -> dict[str, Any]:
        return _flow_view()

    @flow
    def parent() -> dict[str, Any]:
        return child(3)

    view = parent()
    runs = {r.flow_name: r for r in harness.flow_runs()}
    assert view["id"] == runs["child"].id
    assert view["flow_name"] == "child"
    assert view["parameters"] == {"z": 3}
    assert view["parent_flow_run_id"] == runs["parent"].id


def test_runtime_tags_include_the_tags_context(harness: TestHarness) -> None:
    @task(tags=["own"])
    def tagged() -> tuple[str, ...]:
        return task_run.tags

    @flow
    def runs_tagged() -> tuple[str, ...]:
        with stratoflow.tags("ctx"):
            return tagged()

    assert runs_tagged() == ("own", "ctx")


def test_outside_a_run_everything_is_empty() -> None:
    assert flow_run.id is None
    assert flow_run.name is None
    assert flow_run.flow_name is None
    assert flow_run.run_count is None
    assert flow_run.parameters == {}
    assert flow_run.tags == ()
    assert task_run.id is None
    assert task_run.name is None
    assert task_run.run_count is None
    assert task_run.parameters == {}
    assert task_run.tags == ()


def test_parameters_are_a_copy(harness: TestHarness) -> None:
    @flow
    def mutates(x: int) -> int:
        flow_run.parameters["x"] = 100
        return flow_run.parameters["x"]

    assert mutates(1) == 1


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match=r"stratoflow\.runtime\.flow_run has no attribute"):
        _ = flow_run.not_there
    with pytest.raises(AttributeError, match=r"stratoflow\.runtime\.task_run has no attribute"):
        _ = task_run.not_there


def test_prefect_style_import() -> None:
    from stratoflow import runtime

    assert runtime.flow_run is flow_run
    assert runtime.task_run is task_run
    assert stratoflow.runtime.flow_run is flow_run
