"""Flows that misbehave under real pollers (with the scheduler tick, and its sweeps,
driven by the test): code that raises at import, a process that calls `os._exit(3)`
(an exit code the poller reads as "reported by the process", so only the heartbeat
sweep can tell), a process that SIGKILLs itself (the poller's exit handling), a flow
that exceeds its timeout, one that always raises. Each ends in a clear final state,
retried as far as its retries say, and nothing is left Running or Pending."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import pytest

from stratoflow import runs as run_api
from stratoflow.deployments.runs import run_deployment
from stratoflow.exceptions import ParameterValidationError
from stratoflow.models import FlowRun
from stratoflow.platform import Platform
from stratoflow.states import StateType
from tests.chaos._chaos import SCALE, Pollers, Stack, Ticker, audit, record_figures, settle

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240 if SCALE.name == "default" else 900)]

NO_HEARTBEAT = "No heartbeat for more than 8 s: the process running it stopped."
KILLED = "The flow run's process was killed by SIGKILL before the run ended."


@dataclass(frozen=True)
class Expected:
    state: str
    attempts: list[int]
    """The attempts whose user code started, from the ledger."""
    message: str
    crashes: list[str] | None = None
    """Messages of the Crashed states in the run's history, oldest first."""
    result: str | None = None


CASES = {
    "mis-broken": Expected(
        "Failed",
        [],
        "importing broken.py raised RuntimeError: cannot reach the feature store",
    ),
    "mis-exits-once": Expected(
        "Completed", [1, 2], "", crashes=[NO_HEARTBEAT], result="second attempt"
    ),
    "mis-exits-always": Expected(
        "Crashed", [1, 2], NO_HEARTBEAT, crashes=[NO_HEARTBEAT, NO_HEARTBEAT]
    ),
    "mis-killed-once": Expected("Completed", [1, 2], "", crashes=[KILLED], result="second attempt"),
    "mis-killed-always": Expected("Crashed", [1], KILLED, crashes=[KILLED]),
    "mis-overdue": Expected("TimedOut", [1], "exceeded its timeout of 1 seconds"),
    "mis-failing": Expected("Failed", [1, 2, 3], "ValueError: the ledger does not balance"),
    "mis-bad-parameters": Expected("Failed", [], "x: Input should be a valid integer"),
}
PARAMETERS = {"mis-bad-parameters": {"x": "seven"}}
"""Parameters of the wrong type are refused when the run is created. A deployment stored
without a parameter schema (before schemas were stored) checks only the names: the run
is created, and fails when it starts, with the validation message."""


def forget_parameter_schema(platform: Platform, name: str) -> None:
    """`name` as a deployment stored before parameter schemas were: its runs' parameters
    are checked by the worker alone."""
    deployment = platform.deployments.get(name)
    assert deployment.parameter_schema is not None
    with pytest.raises(ParameterValidationError, match="parameter x: 'seven' is not of type"):
        run_deployment(name, PARAMETERS[name], timeout=0)
    assert platform.backend.list_flow_runs_of_deployment(name) == []  # nothing written
    platform.deployments.put(deployment.model_copy(update={"parameter_schema": None}))


def test_misbehaving_flows_end_in_a_clear_final_state(stack: Stack) -> None:
    began = time.monotonic()
    platform = stack.platform
    per_case = 1 if SCALE.name == "default" else 3
    # The worker's environment breaks broken.py's import (it imported fine at deploy).
    pollers = Pollers(stack, "misbehave", env={"CHAOS_IMPORT_BROKEN": "1"})
    created: dict[str, str] = {}
    forget_parameter_schema(platform, "mis-bad-parameters")
    try:
        for _ in range(SCALE.pollers):
            pollers.start()
        with Ticker(platform) as ticker:
            for name in CASES:
                for _ in range(per_case):
                    created[run_deployment(name, PARAMETERS.get(name), timeout=0).id] = name

            def read() -> list[FlowRun]:
                return [r for name in CASES for r in stack.runs_of(name) if r.id in created]

            limit = 150 if SCALE.name == "default" else 600
            runs = settle(read, expected=len(created), timeout=limit)
        pollers.check_alive()  # no misbehaving flow took its worker down
        pollers.stop()
    except BaseException:
        print(pollers.logs())
        raise
    finally:
        pollers.close()

    report = audit(stack, runs)
    for run in runs:
        expected = CASES[created[run.id]]
        assert run.state is not None
        where = f"{created[run.id]} ({run.id}): {run.state!r}"
        assert run.state.name == expected.state, where
        assert expected.message in (run.state.message or ""), where
        attempts = [attempt for attempt, _ in stack.executions(run.id)]
        assert attempts == expected.attempts, where
        assert run.run_count == len(expected.attempts), where
        crashes = [s.message for s in run.state_history if s.type is StateType.CRASHED]
        if run.state.type is StateType.CRASHED:
            crashes.append(run.state.message)
        assert crashes == (expected.crashes or []), where
        if expected.result is not None:
            assert run_api.read_result(run) == expected.result
    # Nothing of theirs is left Running or Pending.
    for state_type in (StateType.RUNNING, StateType.PENDING, StateType.SCHEDULED):
        left = platform.backend.list_flow_runs_by_state(state_type)
        assert [r.id for r in left if r.id in created] == []
    assert ticker.errors == []
    record_figures(
        "misbehaving flows",
        runs=len(runs),
        final_states=dict(Counter(r.state_name for r in runs)),
        crashed_attempts=report.crashed_attempts,
        swept_crashed=ticker.totals["crashed"],
        swept_retried=ticker.totals["retried"],
        executions=report.executions,
        attempts=report.attempts,
        seconds=round(time.monotonic() - began, 1),
    )
