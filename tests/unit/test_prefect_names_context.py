"""Prefect 3's run context API: `FlowRunContext.get()`, `TaskRunContext.get()`,
`get_run_context()`, and `stratoflow.runtime.deployment`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from stratoflow import flow, task
from stratoflow.context import FlowRunContext, TaskRunContext, get_run_context
from stratoflow.engine.flow_engine import FlowRunEngine
from stratoflow.exceptions import MissingContextError
from stratoflow.models import FlowRun
from stratoflow.runtime import deployment
from stratoflow.states import Pending
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


def test_outside_a_run_the_contexts_are_none() -> None:
    assert FlowRunContext.get() is None
    assert TaskRunContext.get() is None
    with pytest.raises(MissingContextError):
        get_run_context()


def test_inside_a_flow_and_its_task(harness: TestHarness) -> None:
    seen: dict[str, Any] = {}

    @task
    def inner() -> None:
        task_ctx = TaskRunContext.get()
        assert task_ctx is not None
        seen["task_run"] = task_ctx.task_run.name
        seen["task_sees_flow"] = FlowRunContext.get().flow_run.id  # type: ignore[union-attr]
        seen["task_run_context"] = get_run_context() is task_ctx

    @flow
    def outer() -> None:
        flow_ctx = FlowRunContext.get()
        assert flow_ctx is not None
        seen["flow_run"] = flow_ctx.flow_run.id
        seen["flow_has_no_task"] = TaskRunContext.get() is None
        seen["flow_run_context"] = get_run_context() is flow_ctx
        inner()
        inner.submit().wait()

    outer()
    run = harness.last_flow_run()
    assert seen == {
        "flow_run": run.id,
        "flow_has_no_task": True,
        "flow_run_context": True,
        "task_run": "inner-1",
        "task_sees_flow": run.id,
        "task_run_context": True,
    }


# stratoflow.runtime.deployment


def test_deployment_outside_a_run() -> None:
    assert deployment.id is None
    assert deployment.name is None
    assert deployment.version is None
    assert deployment.flow_run_id is None
    assert deployment.parameters == {}
    assert set(dir(deployment)) >= {"id", "name", "version", "parameters", "flow_run_id"}
    with pytest.raises(AttributeError):
        _ = deployment.nonexistent


def _view() -> dict[str, Any]:
    return {
        "id": deployment.id,
        "name": deployment.name,
        "version": deployment.version,
        "parameters": deployment.parameters,
        "flow_run_id": deployment.flow_run_id,
    }


def test_deployment_in_a_run_that_was_not_deployed(harness: TestHarness) -> None:
    @flow
    def local(n: int) -> dict[str, Any]:
        return _view()

    view = local(3)
    assert view == {
        "id": None,
        "name": None,
        "version": None,
        "parameters": {},
        "flow_run_id": harness.last_flow_run().id,
    }


def test_deployment_in_a_deployed_run(harness: TestHarness) -> None:
    views: list[dict[str, Any]] = []

    @task
    def from_a_task() -> None:
        views.append(_view())

    @flow
    def nightly(day: str) -> None:
        views.append(_view())
        from_a_task()

    run = FlowRun(
        id=str(uuid.uuid4()),
        name="deployed-run",
        flow_name="nightly",
        flow_version="2026.11",
        parameters={"day": "monday"},
        deployment_name="nightly-etl",
        state=Pending(),
    )
    harness.services.backend.create_flow_run(run)
    state = FlowRunEngine(nightly, harness.services).run_existing(run)
    assert state.is_completed(), state
    expected = {
        "id": "nightly-etl",
        "name": "nightly-etl",
        "version": "2026.11",
        "parameters": {"day": "monday"},
        "flow_run_id": run.id,
    }
    assert views == [expected, expected]
