"""Options Prefect 3 accepts: `on_running` for tasks, `cache_result_in_memory`,
`ProcessPoolTaskRunner(initializer=, initargs=)`, `Flow.parameters`; and the lines a
task run outside any flow logs."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest

from stratoflow import Flow, ProcessPoolTaskRunner, flow, task
from stratoflow.engine.parameter_schema import ParameterSchema, parameter_docstrings
from stratoflow.logging import TASK_RUN_LOGGER
from stratoflow.states import Failed
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


# on_running for tasks


def test_task_on_running_hooks_run_at_each_attempt(harness: TestHarness) -> None:
    seen: list[tuple[str, int]] = []
    attempts: list[int] = []

    def record(task: Any, run: Any, state: Any) -> None:
        seen.append((state.name, run.run_count))

    @task(retries=1, on_running=[record])
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("first attempt")
        return "ok"

    @flow
    def pipeline() -> str:
        return flaky()

    assert pipeline() == "ok"
    assert seen == [("Running", 1), ("Retrying", 2)]


def test_task_on_running_accepts_a_single_callable() -> None:
    def hook(task: Any, run: Any, state: Any) -> None: ...

    assert task(on_running=hook)(lambda: None).on_running_hooks == [hook]


# cache_result_in_memory


def test_cache_result_in_memory_false_reads_the_result_from_storage(
    harness: TestHarness, tmp_path: Path
) -> None:
    @task(persist_result=True, result_storage=str(tmp_path), cache_result_in_memory=False)
    def produce() -> dict[str, int]:
        return {"n": 1}

    @flow
    def pipeline() -> tuple[Any, Any, Any]:
        future = produce.submit()
        state = future.state if future.wait() is None else None
        return produce(), state, future.result()

    direct, state, from_future = pipeline()
    assert direct == {"n": 1}  # what the function returned, as Prefect's call gives back
    assert state is not None and state.has_data is False and state.result_record is not None
    assert from_future == {"n": 1}  # loaded from the result store


def test_cache_result_in_memory_false_without_persistence_keeps_the_value(
    harness: TestHarness,
) -> None:
    @task(persist_result=False, cache_result_in_memory=False)
    def produce() -> int:
        return 3

    @flow
    def pipeline() -> int:
        return produce.submit().result()

    assert pipeline() == 3


def test_flow_cache_result_in_memory_false(harness: TestHarness, tmp_path: Path) -> None:
    @flow(persist_result=True, result_storage=str(tmp_path), cache_result_in_memory=False)
    def pipeline() -> list[int]:
        return [1, 2]

    state = pipeline(return_state=True)
    assert state.has_data is False
    assert state.result() == [1, 2]
    assert pipeline() == [1, 2]
    assert pipeline.cache_result_in_memory is False


# ProcessPoolTaskRunner(initializer=..., initargs=...)


def set_worker_marker(value: str) -> None:
    os.environ["STRATOFLOW_TEST_WORKER_MARKER"] = value


@task
def read_worker_marker() -> str | None:
    return os.environ.get("STRATOFLOW_TEST_WORKER_MARKER")


@flow(
    task_runner=ProcessPoolTaskRunner(
        max_workers=1, initializer=set_worker_marker, initargs=("initialized",)
    )
)
def process_pool_with_initializer() -> str | None:
    return read_worker_marker.submit().result()


def test_process_pool_initializer_configuration_is_kept() -> None:
    runner = ProcessPoolTaskRunner(max_workers=2, initializer=set_worker_marker, initargs=["x"])
    copy = runner.duplicate()
    assert copy.initializer is set_worker_marker and copy.initargs == ("x",)
    with pytest.raises(TypeError, match="callable"):
        ProcessPoolTaskRunner(initializer="not callable")  # type: ignore[arg-type]


@pytest.mark.slow
def test_process_pool_initializer_runs_in_each_worker(harness: TestHarness) -> None:
    assert process_pool_with_initializer() == "initialized"


# Flow.parameters


class Point(pydantic.BaseModel):
    x: int


def test_flow_parameters_is_prefects_parameter_schema() -> None:
    @flow
    def load(table: str, limit: int = 10, point: Point | None = None) -> None:
        """Load rows.

        Args:
            table: the table to read
            limit: at most this many rows
        """

    schema = load.parameters
    assert isinstance(schema, ParameterSchema)
    assert schema.title == "Parameters" and schema.type == "object"
    assert schema.required == ["table"]
    assert schema.properties["table"] == {
        "description": "the table to read",
        "position": 0,
        "title": "table",
        "type": "string",
    }
    assert schema.properties["limit"]["default"] == 10
    assert schema.properties["limit"]["position"] == 1
    assert schema.properties["point"]["anyOf"][0] == {"$ref": "#/definitions/Point"}
    assert "Point" in schema.definitions
    assert "required" in schema.model_dump_for_openapi()


def test_flow_parameters_leave_out_self() -> None:
    class Job:
        @flow
        def run(self, n: int) -> int:
            return n

    assert isinstance(Job.run, Flow)
    assert list(Job.run.parameters.properties) == ["n"]


def test_parameter_docstrings_reads_google_style_sections() -> None:
    doc = "Summary.\n\nArgs:\n    a (int): first\n        more\n    b: second\n\nReturns:\n    x"
    assert parameter_docstrings(doc) == {"a": "first more", "b": "second"}


# A task run outside any flow logs what Prefect logs


def test_a_task_outside_a_flow_logs_its_lifecycle(
    harness: TestHarness, caplog: pytest.LogCaptureFixture
) -> None:
    @task
    def add(x: int) -> int:
        return x + 1

    with caplog.at_level(logging.DEBUG, logger=TASK_RUN_LOGGER):
        assert add(1) == 2
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == TASK_RUN_LOGGER]
    level, created = lines[0]
    assert level == "DEBUG"
    assert re.fullmatch(r"Created task run 'add-\d+' for task 'add'", created)
    assert lines[-1] == ("INFO", "Finished in state Completed()")


def test_a_failed_task_outside_a_flow_logs_an_error(
    harness: TestHarness, caplog: pytest.LogCaptureFixture
) -> None:
    @task
    def refuse() -> Any:
        return Failed("refused")

    with caplog.at_level(logging.INFO, logger=TASK_RUN_LOGGER):
        refuse()
    finished = [r for r in caplog.records if r.getMessage().startswith("Finished in state")]
    assert [(r.levelname, r.getMessage()) for r in finished] == [
        ("ERROR", "Finished in state Failed('refused')")
    ]
