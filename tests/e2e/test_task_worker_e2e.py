"""Background tasks end to end on the emulator (moto's server in its own process): the
caller's `.delay(...)` in this process, a real `strato task-worker start` process serving
the task; the future reads the result back; Ctrl-C stops the worker."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from _stack import emulated_installation

from stratoflow.states import StateType

pytestmark = pytest.mark.slow

SDK = Path(__file__).resolve().parents[2] / "sdk"
TASKS = """
from stratoflow import task
from stratoflow.runtime import task_run


@task(retries=1, retry_delay_seconds=0)
def shout(word: str) -> dict:
    if task_run.run_count < 2:
        raise RuntimeError("the first attempt fails")
    return {"word": word.upper(), "attempt": task_run.run_count}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    home = tmp_path_factory.mktemp("home")
    project = tmp_path_factory.mktemp("project")
    (project / "e2e_background_tasks.py").write_text(textwrap.dedent(TASKS).lstrip())
    with emulated_installation(home, prepare=lambda patch: patch.syspath_prepend(str(project))):
        child = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SDK), str(project)]))
        yield project, child


def load(project: Path) -> ModuleType:
    return importlib.import_module("e2e_background_tasks")


def test_strato_task_worker_start_runs_delayed_tasks(
    project: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    directory, env = project
    module = load(directory)
    log_path = tmp_path / "task-worker.log"
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stratoflow.cli",
                "task-worker",
                "start",
                "e2e_background_tasks:shout",
            ],
            env=env,
            cwd=directory,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            futures = [module.shout.delay(word) for word in ("hi", "there")]
            results = [future.result(timeout=60) for future in futures]
            assert results == [{"word": "HI", "attempt": 2}, {"word": "THERE", "attempt": 2}]
            states = [future.state for future in futures]
            assert all(state.type is StateType.COMPLETED for state in states)
            history = [s.name for s in futures[0].task_run.state_history]
            assert history[:2] == ["Scheduled", "Pending"] and "AwaitingRetry" in history
        finally:
            worker.send_signal(signal.SIGINT)
            code = worker.wait(timeout=60)
    output = log_path.read_text()
    assert "Serving shout" in output, output
    assert code == 0, output
