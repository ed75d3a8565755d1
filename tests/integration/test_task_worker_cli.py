"""`strato task-worker start` on moto: runs what `.delay` sent (`--once`), and one-line
errors for what it cannot serve."""

from __future__ import annotations

import _background_tasks as tasks
from _deploy_fixtures import Installation, installation  # noqa: F401
from typer.testing import CliRunner

from stratoflow.cli import app
from stratoflow.testing import stratoflow_test_harness

runner = CliRunner()


def test_start_once_runs_the_delayed_runs(installation: Installation) -> None:
    tasks.CALLS.clear()
    future = tasks.add.delay(4, 5)
    result = runner.invoke(app, ["task-worker", "start", "_background_tasks:add", "--once"])
    assert result.exit_code == 0, result.output
    assert "Serving add" in result.output and "stratoflow-tasks" in result.output
    assert "Processed 1 message(s)." in result.output
    assert future.result(timeout=5) == 9


def test_a_whole_module_is_served(installation: Installation) -> None:
    result = runner.invoke(app, ["task-worker", "start", "_background_tasks", "--once"])
    assert result.exit_code == 0, result.output
    for name in ("add", "flaky", "fail", "describe", "unserved"):
        assert f"{name} (" in result.output


def test_what_is_not_a_task_is_a_one_line_error(installation: Installation) -> None:
    result = runner.invoke(app, ["task-worker", "start", "_background_tasks:CALLS"])
    assert result.exit_code == 2
    assert "names list, not a task" in result.output
    result = runner.invoke(app, ["task-worker", "start", "no_such_module_here:x"])
    assert result.exit_code == 2
    assert "module 'no_such_module_here' was not found" in result.output


def test_the_memory_backend_says_how_to_configure() -> None:
    with stratoflow_test_harness():
        result = runner.invoke(app, ["task-worker", "start", "_background_tasks:add"])
    assert result.exit_code == 2
    assert "STRATOFLOW_BACKEND=aws" in result.output
