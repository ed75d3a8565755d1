"""Run loggers and `log_prints`: every line carries its run and reaches the backend."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest

from stratoflow import flow, get_run_logger, task
from stratoflow.exceptions import MissingContextError
from stratoflow.models import LogEntry
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


def _entry(harness: TestHarness, message: str) -> LogEntry:
    matches = [entry for entry in harness.logs() if entry.message == message]
    assert len(matches) == 1, [entry.message for entry in harness.logs()]
    return matches[0]


# get_run_logger


def test_flow_logger_carries_the_flow_run(harness: TestHarness) -> None:
    @flow(flow_run_name="logging-run")
    def logs() -> None:
        get_run_logger().info("in the flow: %s", "hello")
        get_run_logger().warning("careful")

    logs()
    run = harness.last_flow_run()
    entry = _entry(harness, "in the flow: hello")
    assert entry.flow_run_id == run.id
    assert entry.flow_run_name == "logging-run"
    assert entry.task_run_id is None
    assert entry.task_run_name is None
    assert entry.level == logging.INFO
    assert entry.level_name == "INFO"
    assert entry.logger == "stratoflow.flow_runs"
    assert _entry(harness, "careful").level_name == "WARNING"


def test_task_logger_carries_the_task_run_and_flow_run(harness: TestHarness) -> None:
    @task(task_run_name="load-{table}")
    def load(table: str) -> None:
        get_run_logger().info("loading %s", table)

    @flow(flow_run_name="parent-run")
    def logs() -> None:
        load("orders")
        load.submit("users").wait()

    logs()
    run = harness.last_flow_run()
    task_runs = {t.name: t for t in harness.task_runs(run.id)}
    for table in ("orders", "users"):
        entry = _entry(harness, f"loading {table}")
        assert entry.flow_run_id == run.id
        assert entry.flow_run_name == "parent-run"
        assert entry.task_run_id == task_runs[f"load-{table}"].id
        assert entry.task_run_name == f"load-{table}"
        assert entry.logger == "stratoflow.task_runs"
    entries = harness.backend.read_logs(run.id, task_run_id=task_runs["load-orders"].id)
    assert "loading orders" in [e.message for e in entries]
    assert "loading users" not in [e.message for e in entries]


def test_logged_exception_includes_the_traceback(harness: TestHarness) -> None:
    @flow
    def logs() -> None:
        try:
            raise ValueError("inner problem")
        except ValueError:
            get_run_logger().exception("it failed")

    logs()
    [entry] = [e for e in harness.logs() if e.message.startswith("it failed")]
    assert "Traceback" in entry.message
    assert "ValueError: inner problem" in entry.message
    assert entry.level_name == "ERROR"


def test_subflow_logs_go_to_the_subflow_run(harness: TestHarness) -> None:
    @flow
    def child() -> None:
        get_run_logger().info("from the child")

    @task
    def runs_child() -> None:
        child()

    @flow
    def parent() -> None:
        runs_child()

    parent()
    child_run = next(r for r in harness.flow_runs() if r.flow_name == "child")
    entries = [e for e in harness.logs(child_run.id) if e.message == "from the child"]
    assert len(entries) == 1
    assert entries[0].task_run_id is None


def test_get_run_logger_outside_a_run_raises_a_helpful_error() -> None:
    with pytest.raises(MissingContextError) as info:
        get_run_logger()
    message = str(info.value)
    assert "There is no active flow or task run." in message
    assert "@flow or @task" in message


def test_get_run_logger_extra_fields(harness: TestHarness) -> None:
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect()
    logger = logging.getLogger("stratoflow")

    @flow
    def logs() -> None:
        get_run_logger(batch="b1").info("with extra")

    logger.addHandler(handler)
    try:
        logs()
    finally:
        logger.removeHandler(handler)
    [record] = [r for r in records if r.getMessage() == "with extra"]
    assert record.batch == "b1"  # type: ignore[attr-defined]
    assert record.flow_run_id == harness.last_flow_run().id  # type: ignore[attr-defined]


# log_prints


def test_log_prints_captures_print_in_flow_and_tasks(
    harness: TestHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    @task
    def noisy_task() -> None:
        print("from the task", 42)

    @flow(log_prints=True)
    def noisy() -> None:
        print("from the flow")
        print("a", "b", sep="-")
        noisy_task()
        noisy_task.submit().wait()

    noisy()
    run = harness.last_flow_run()
    flow_entry = _entry(harness, "from the flow")
    assert flow_entry.level == logging.INFO
    assert flow_entry.flow_run_id == run.id
    assert flow_entry.task_run_id is None
    assert _entry(harness, "a-b").flow_run_id == run.id
    task_entries = [e for e in harness.logs() if e.message == "from the task 42"]
    assert len(task_entries) == 2
    task_ids = {t.id for t in harness.task_runs(run.id)}
    assert {e.task_run_id for e in task_entries} == task_ids
    assert all(e.level_name == "INFO" for e in task_entries)
    out = capsys.readouterr().out
    assert "from the flow" not in out
    assert "from the task" not in out


def test_task_with_log_prints_false_prints_normally(
    harness: TestHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    @task(log_prints=False)
    def quiet_task() -> None:
        print("task prints to stdout")

    @flow(log_prints=True)
    def noisy() -> None:
        print("flow line is logged")
        quiet_task()

    noisy()
    messages = harness.log_messages()
    assert "flow line is logged" in messages
    assert "task prints to stdout" not in messages
    assert "task prints to stdout" in capsys.readouterr().out


def test_task_with_log_prints_true_in_a_flow_without_it(
    harness: TestHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    @task(log_prints=True)
    def noisy_task() -> None:
        print("task line is logged")

    @flow
    def quiet() -> None:
        print("flow prints to stdout")
        noisy_task()

    quiet()
    messages = harness.log_messages()
    assert "task line is logged" in messages
    assert "flow prints to stdout" not in messages
    assert "flow prints to stdout" in capsys.readouterr().out


def test_print_to_stderr_is_not_captured(
    harness: TestHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    @flow(log_prints=True)
    def noisy() -> None:
        print("to stderr", file=sys.stderr)
        print("to stdout")

    noisy()
    assert "to stderr" not in harness.log_messages()
    assert "to stdout" in harness.log_messages()
    assert "to stderr" in capsys.readouterr().err


def test_flow_without_log_prints_prints_normally(
    harness: TestHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    @flow
    def plain() -> None:
        print("plain output")

    plain()
    assert "plain output" in capsys.readouterr().out
    assert "plain output" not in harness.log_messages()


def test_print_outside_a_run_is_unchanged(
    harness: TestHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    @flow(log_prints=True)
    def noisy() -> None:
        print("inside")

    noisy()  # installs the print capture
    print("outside", "run", sep="_", end="!\n")
    assert capsys.readouterr().out.endswith("outside_run!\n")
