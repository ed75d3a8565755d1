"""Prefect 3's logging package layout: `stratoflow.logging.loggers` (get_run_logger,
get_logger, disable_run_logger) and `stratoflow.logging.handlers`."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

import stratoflow
from stratoflow import flow, task
from stratoflow import logging as sflogging
from stratoflow.context import FlowRunContext
from stratoflow.exceptions import MissingContextError
from stratoflow.logging import handlers, loggers
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


def test_prefect_module_paths() -> None:
    from stratoflow.logging import disable_run_logger, get_logger, get_run_logger

    assert get_run_logger is loggers.get_run_logger is stratoflow.get_run_logger
    assert get_logger is loggers.get_logger
    assert disable_run_logger is loggers.disable_run_logger
    assert issubclass(handlers.BackendLogHandler, logging.Handler)
    assert issubclass(handlers.ConsoleHandler, logging.StreamHandler)


def test_the_names_of_the_former_module_are_still_there() -> None:
    for name in (
        "FLOW_RUN_LOGGER",
        "TASK_RUN_LOGGER",
        "RunLoggerAdapter",
        "BackendLogHandler",
        "ConsoleFormatter",
        "install_print_capture",
        "log_prints_enabled",
        "run_logger_for",
        "setup_logging",
    ):
        assert hasattr(sflogging, name), name


def test_get_logger_gives_children_of_the_stratoflow_logger() -> None:
    assert loggers.get_logger() is logging.getLogger("stratoflow")
    assert loggers.get_logger("mylib") is logging.getLogger("stratoflow.mylib")
    assert loggers.get_logger("stratoflow.mylib") is logging.getLogger("stratoflow.mylib")


def test_outside_a_run_get_run_logger_raises() -> None:
    with pytest.raises(MissingContextError):
        loggers.get_run_logger()


def test_disable_run_logger_lets_a_task_function_run_outside_a_run() -> None:
    @task
    def greet(name: str) -> str:
        loggers.get_run_logger().info("hello %s", name)
        return f"hi {name}"

    with loggers.disable_run_logger():
        assert greet.fn("ada") == "hi ada"
        silent = loggers.get_run_logger()
        assert silent.disabled  # type: ignore[union-attr]
    assert not logging.getLogger(loggers.FLOW_RUN_LOGGER).disabled
    assert not logging.getLogger(loggers.TASK_RUN_LOGGER).disabled


def test_disable_run_logger_silences_run_lines(harness: TestHarness) -> None:
    @flow
    def quiet() -> None:
        loggers.get_run_logger().info("not recorded")

    with loggers.disable_run_logger():
        quiet()
    assert "not recorded" not in harness.log_messages()


def test_disable_logger_restores_the_previous_state() -> None:
    named = logging.getLogger("stratoflow.test-disable")
    named.disabled = True
    with loggers.disable_logger("stratoflow.test-disable"):
        assert named.disabled
    assert named.disabled
    named.disabled = False


def test_get_run_logger_for_a_given_context(harness: TestHarness) -> None:
    @flow(flow_run_name="explicit")
    def explicit() -> None:
        ctx = FlowRunContext.get()
        loggers.get_run_logger(ctx, step="one").info("with a context")

    explicit()
    entry = next(e for e in harness.logs() if e.message == "with a context")
    assert entry.flow_run_name == "explicit"
    with pytest.raises(TypeError, match="context"):
        loggers.get_run_logger(object())  # type: ignore[arg-type]
