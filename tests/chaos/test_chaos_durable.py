"""SIGKILL the processes of durable flow runs at random points, and their pollers, and
check what replay promises (docs/durability.md):

- every run ends Completed with the right result;
- a task call whose Completed state was recorded is never executed again by a later
  attempt (a call killed before its completion was recorded may run again: at least
  once, as Lambda durable functions' steps);
- the durable sleep in the middle of each run is passed once per attempt at most, and
  every task call ran at least once.

Each run's tasks append `index attempt pid` to `<ledger>/<run id>.tasks`.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import defaultdict

import pytest

from stratoflow import runs as run_api
from stratoflow.deployments.runs import run_deployment
from stratoflow.models import FlowRun
from tests.chaos._chaos import (
    SCALE,
    Pollers,
    Stack,
    Ticker,
    alive,
    descendant_pids,
    record_figures,
    settle,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300 if SCALE.name == "default" else 1800)]

DEPLOYMENT = "durable-steps"
RUNS = 6 if SCALE.name == "default" else 30
KILLS = 6 if SCALE.name == "default" else 40
STEPS = 6
EXPECTED = sum(i * i for i in range(STEPS))


def task_executions(stack: Stack, run_id: str) -> list[tuple[int, int, int]]:
    """(index, attempt, pid) of every execution of the run's tasks, in order."""
    path = stack.ledger / f"{run_id}.tasks"
    if not path.exists():
        return []
    return [
        (int(index), int(attempt), int(pid))
        for index, attempt, pid in (line.split() for line in path.read_text().splitlines())
    ]


def busy_processes(stack: Stack, pollers: Pollers) -> list[int]:
    """Flow run processes that wrote a task line in the last second and still live."""
    children = {pid for poller in pollers.live for pid in descendant_pids(poller.process.pid)}
    probe = stack.ledger.parent / ".durable-probe"
    probe.touch()
    recent = probe.stat().st_mtime - 1.0
    found = []
    for path in stack.ledger.glob("*.tasks"):
        if path.stat().st_mtime < recent:
            continue
        lines = path.read_text().splitlines()
        pid = int(lines[-1].split()[2]) if lines else 0
        if pid in children and alive(pid):
            found.append(pid)
    return found


def recorded_completions(run: FlowRun) -> dict[int, int]:
    """Call index → the first attempt whose Completed state for that call was recorded."""
    completed: dict[int, int] = {}
    for task_run in run_api.read_task_runs(run.id):
        if task_run.state is None or not task_run.state.is_completed():
            continue
        if task_run.replay_key is None or task_run.flow_run_attempt is None:
            continue
        index = int(task_run.replay_key.rsplit("#", 1)[1])
        attempt = task_run.flow_run_attempt
        completed[index] = min(attempt, completed.get(index, attempt))
    return completed


def test_killed_durable_runs_never_run_a_recorded_task_again(stack: Stack) -> None:
    rng = random.Random(SCALE.seed + 14)
    began = time.monotonic()
    pollers = Pollers(stack, "durable")
    killed = 0
    machine_kills = 0
    try:
        for _ in range(2):
            pollers.start()
        with Ticker(stack.platform) as ticker:
            created = [run_deployment(DEPLOYMENT, timeout=0) for _ in range(RUNS)]
            for number in range(KILLS):
                time.sleep(rng.uniform(0.3, 1.5))
                pollers.check_alive()
                busy = busy_processes(stack, pollers)
                if number % 3 == 2:  # a machine dies: the poller and its runs
                    victim = rng.choice(pollers.live)
                    killed += pollers.kill(victim, with_runs=True)
                    machine_kills += 1
                    pollers.start()
                elif busy:
                    os.kill(rng.choice(busy), signal.SIGKILL)
                    killed += 1
            runs = settle(
                lambda: [run_api.read_flow_run(run.id) for run in created],
                expected=RUNS,
                timeout=200 if SCALE.name == "default" else 1500,
                what="durable runs",
            )
        pollers.check_alive()
        pollers.stop()
    except BaseException:
        print(pollers.logs())
        raise
    finally:
        pollers.close()

    again = 0
    replayed_attempts = 0
    for run in runs:
        assert run.state_name == "Completed", (run.id, run.state, run.state_history)
        assert run_api.read_result(run) == EXPECTED
        executions = task_executions(stack, run.id)
        assert {index for index, _, _ in executions} == set(range(STEPS)), executions
        first_recorded = recorded_completions(run)
        by_index: dict[int, list[int]] = defaultdict(list)
        for index, attempt, _ in executions:
            by_index[index].append(attempt)
        for index, attempts in by_index.items():
            recorded_in = first_recorded.get(index)
            later = [a for a in attempts if recorded_in is not None and a > recorded_in]
            assert later == [], (
                f"flow run {run.id}: call {index} completed (recorded) in attempt "
                f"{recorded_in} and ran again in attempts {later}: {executions}"
            )
            again += len(attempts) - 1
        replayed_attempts += max(0, run.run_count - 1)
    assert killed >= 1, "no kill landed in a run"
    assert ticker.errors == []
    assert stack.dead_letters("durable") == []
    record_figures(
        "killed durable runs",
        runs=RUNS,
        kills=KILLS,
        machine_kills=machine_kills,
        flow_processes_killed=killed,
        attempts_after_the_first=replayed_attempts,
        task_calls_run_again_unrecorded=again,
        seconds=round(time.monotonic() - began, 1),
    )
