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

import boto3
import pytest

from stratoflow import resources
from stratoflow.context import set_process_services
from stratoflow.emulator import emulator
from stratoflow.settings import get_settings
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
    with emulator() as url, pytest.MonkeyPatch.context() as patch:
        env = {
            "STRATOFLOW_BACKEND": "aws",
            "STRATOFLOW_ENDPOINT_URL": url,
            "STRATOFLOW_REGION": "us-east-1",
            "STRATOFLOW_HOME": str(home),
            "STRATOFLOW_LOG_TO_CONSOLE": "false",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        for name in list(os.environ):
            if name.startswith(("STRATOFLOW_", "AWS_ENDPOINT_URL")):
                patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        patch.syspath_prepend(str(project))
        get_settings.cache_clear()
        previous = set_process_services(None)
        try:
            resources.provision(boto3.Session(region_name="us-east-1"), endpoint_url=url)
            child = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SDK), str(project)]))
            yield project, child
        finally:
            set_process_services(previous)
            get_settings.cache_clear()


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
