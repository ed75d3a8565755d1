"""Background task workers SIGKILLed in the middle of their runs, on the emulator: real
`strato task-worker start` processes, `.delay()` from this process, the scheduler tick
(and its sweeps) driven by the test with the lowered thresholds of the suite (heartbeat
1 s, lease 8 s). The killed worker's runs are found by the crash sweep once their lease
ends: a task with retries left runs again on another worker and completes, one without
ends Crashed, and its future raises CrashedRun; no run stays Running, no attempt of user
code runs twice (docs/reliability.md)."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from stratoflow.exceptions import CrashedRun
from stratoflow.states import StateType
from tests.chaos._chaos import SCALE, Stack, Ticker, record_figures

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180 if SCALE.name == "default" else 600)]

RUNS = 6 if SCALE.name == "default" else 30
SECONDS = 4.0
"""How long each attempt's user code takes: long enough to be killed in the middle."""
MODULE = "chaos_background_tasks"
WORKER_SCRIPT = Path(__file__).resolve().parent / "_task_worker.py"
TASKS = """
import os
import time

from stratoflow import task
from stratoflow.runtime import task_run


def record(ledger: str, label: str) -> None:
    # One O_APPEND write: a process SIGKILLed right after it still leaves its line.
    line = f"{task_run.run_count} {os.getpid()}\\n".encode()
    descriptor = os.open(os.path.join(ledger, label), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(descriptor, line)
    finally:
        os.close(descriptor)


@task(retries=2, retry_delay_seconds=0)
def sturdy(ledger: str, label: str, seconds: float) -> str:
    record(ledger, label)
    time.sleep(seconds)
    return label


@task
def fragile(ledger: str, label: str, seconds: float) -> str:
    record(ledger, label)
    time.sleep(seconds)
    return label
"""


@pytest.fixture
def tasks(stack: Stack, tmp_path: Path) -> Iterator[tuple[ModuleType, dict[str, str]]]:
    directory = tmp_path / "tasks"
    directory.mkdir()
    (directory / f"{MODULE}.py").write_text(textwrap.dedent(TASKS).lstrip())
    sys.path.insert(0, str(directory))
    try:
        module = importlib.import_module(MODULE)
        path = os.pathsep.join(p for p in (stack.env.get("PYTHONPATH"), str(directory)) if p)
        yield module, {**stack.env, "PYTHONPATH": path}
    finally:
        sys.path.remove(str(directory))
        sys.modules.pop(MODULE, None)


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(WORKER_SCRIPT), MODULE],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def attempts(ledger: Path, label: str) -> list[int]:
    path = ledger / label
    if not path.exists():
        return []
    return [int(line.split()[0]) for line in path.read_text().splitlines()]


def test_runs_of_a_killed_task_worker_are_crashed_and_retried(
    stack: Stack, tasks: tuple[ModuleType, dict[str, str]], tmp_path: Path
) -> None:
    module, env = tasks
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    started = time.monotonic()
    first = Worker(env, tmp_path / "worker-1.log")
    second: Worker | None = None
    workers = [first]
    try:
        sturdy = [module.sturdy.delay(str(ledger), f"s{i}", SECONDS) for i in range(RUNS)]
        fragile = module.fragile.delay(str(ledger), "fragile", SECONDS)
        labels = [f"s{i}" for i in range(RUNS)] + ["fragile"]
        deadline = time.monotonic() + 60
        while not all(attempts(ledger, label) for label in labels):
            assert time.monotonic() < deadline, first.log.read_text()[-3000:]
            time.sleep(0.1)
        first.kill()  # every run is inside its first attempt
        killed_at = time.monotonic()
        second = Worker(env, tmp_path / "worker-2.log")
        workers.append(second)
        with Ticker(stack.platform, every=1.0) as ticker:
            results = [future.result(timeout=90) for future in sturdy]
            with pytest.raises(CrashedRun, match="found by the crash sweep"):
                fragile.result(timeout=60)
        recovered = time.monotonic() - killed_at
        assert ticker.errors == []
    finally:
        for worker in workers:
            with contextlib.suppress(Exception):
                worker.stop()
    logs = "\n".join(w.log.read_text()[-3000:] for w in workers)
    assert second is not None and second.process.returncode == 0, logs
    assert results == [f"s{i}" for i in range(RUNS)]

    backend = stack.platform.backend
    crashed = 0
    for future, label in zip(sturdy, labels[:RUNS], strict=True):
        run = backend.read_task_run(future.task_run_id)
        history = [s.name for s in run.state_history]
        assert "Crashed" in history, (label, history)
        crashed += history.count("Crashed")
        # The ledger: attempt 1 (killed), then attempt 2 on the other worker; no attempt
        # started twice, none more than the run recorded.
        assert attempts(ledger, label) == [1, 2], label
        assert run.run_count == 2
        assert run.state is not None and run.state.type is StateType.COMPLETED
    lost = backend.read_task_run(fragile.task_run_id)
    assert lost.state is not None and lost.state.type is StateType.CRASHED
    assert attempts(ledger, "fragile") == [1]
    record_figures(
        "background task workers killed",
        runs=RUNS + 1,
        kills=1,
        crashed_attempts=crashed + 1,
        retried=RUNS,
        recovered_seconds=round(recovered, 1),
        seconds=round(time.monotonic() - started, 1),
    )
