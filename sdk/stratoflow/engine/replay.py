"""Replay: a flow run's next attempt reuses the task runs its earlier attempts completed.

A flow run is a sequence of attempts, each re-executing the flow function (a retry, a
crash recovery, a resume after a suspension or a hand-back). Every task call gets a key
that is the same in every attempt as long as the code calls the same tasks in the same
order: the key of the scope it is called from (the flow body, or the task run calling it),
the task's key, and the call's ordinal among that task's calls in that scope. A call whose
key completed in an earlier attempt returns the recorded state (and result) without
calling the function (docs/durability.md).

The positions of calls are checked too: the n-th call of a scope must be to the task the
latest earlier attempt called there, up to the first call of that scope that runs live
(after it, the code may rightly take another path: the live call's outcome can differ).
A mismatch is a divergence: the code changed between attempts, or depends on something
other than its inputs and its tasks' results. It fails the run instead of mixing results
of two different programs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from stratoflow.exceptions import ReplayDivergenceError
from stratoflow.models import TaskRun
from stratoflow.states import StateType

logger = logging.getLogger("stratoflow.replay")

FLOW_SCOPE = ""
"""The scope of calls made by the flow function itself."""


def replay_key(scope: str, task_key: str, ordinal: int) -> str:
    """The key of the `ordinal`-th call of `task_key` in `scope` (a task run's key is the
    scope of the calls it makes)."""
    return f"{scope}/{task_key}#{ordinal}"


def scope_of(run: TaskRun) -> str | None:
    """The scope a recorded task run was called from, from its key."""
    key = run.replay_key
    if key is None:
        return None
    head, _, ordinal = key.rpartition("#")
    suffix = f"/{run.task_key}"
    if not ordinal.isdigit() or not head.endswith(suffix):
        return None
    return head[: -len(suffix)]


class CallPosition(NamedTuple):
    """Where a task call sits in its attempt: its key and its index in its scope. (A
    named tuple: one is made per task call, and a frozen dataclass costs more to build.)"""

    scope: str
    key: str
    call_index: int


@dataclass
class _Scope:
    ordinals: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    live: bool = False
    """A call of this scope ran live: later positions are no longer checked."""


class CallPositions:
    """Hands out call positions for one attempt of a flow run (thread-safe: tasks
    submitted to threads call tasks too)."""

    def __init__(self) -> None:
        self._scopes: dict[str, _Scope] = {}
        self._lock = threading.Lock()

    def next(self, scope: str, task_key: str) -> CallPosition:
        with self._lock:
            state = self._scopes.get(scope)
            if state is None:
                state = self._scopes[scope] = _Scope()
            ordinals = state.ordinals
            ordinal = ordinals.get(task_key, 0)
            ordinals[task_key] = ordinal + 1
            index = state.calls
            state.calls = index + 1
        return CallPosition(scope, replay_key(scope, task_key, ordinal), index)

    def went_live(self, scope: str) -> bool:
        """Mark `scope` as past its recorded history; returns whether it already was."""
        with self._lock:
            state = self._scopes.setdefault(scope, _Scope())
            was, state.live = state.live, True
            return was

    def is_live(self, scope: str) -> bool:
        with self._lock:
            state = self._scopes.get(scope)
            return state is not None and state.live


class ReplayHistory:
    """The task runs of a flow run's earlier attempts, ready to be replayed."""

    def __init__(self, flow_run_name: str, task_runs: Iterable[TaskRun], *, since_attempt: int):
        self.flow_run_name = flow_run_name
        self.completed: dict[str, TaskRun] = {}
        """Key → a task run that completed with a stored result."""
        self._positions: dict[tuple[str, int], tuple[int, str]] = {}
        """(scope, index) → (attempt, task key) of the latest attempt's call there."""
        self.replayed = 0
        for run in task_runs:
            self._add(run, since_attempt)

    def _add(self, run: TaskRun, since_attempt: int) -> None:
        attempt = run.flow_run_attempt
        if run.replay_key is None or attempt is None or attempt < since_attempt:
            return
        scope = scope_of(run)
        if scope is not None and run.call_index is not None:
            position = (scope, run.call_index)
            seen = self._positions.get(position)
            if seen is None or seen[0] < attempt:
                self._positions[position] = (attempt, run.task_key)
        state = run.state
        if (
            state is not None
            and state.type is StateType.COMPLETED
            and run.result_record is not None
            and run.replay_key not in self.completed
        ):
            self.completed[run.replay_key] = run

    def __len__(self) -> int:
        return len(self.completed)

    @property
    def has_positions(self) -> bool:
        """Whether calls were recorded (positions to check even with nothing to replay)."""
        return bool(self._positions)

    def check_position(self, position: CallPosition, task_key: str, task_name: str) -> None:
        """Raise ReplayDivergenceError when the latest earlier attempt called another
        task at this position of the scope."""
        seen = self._positions.get((position.scope, position.call_index))
        if seen is None or seen[1] == task_key:
            return
        where = "the flow function" if position.scope == FLOW_SCOPE else "its parent task run"
        raise ReplayDivergenceError(
            f"Flow run {self.flow_run_name!r} diverged from its recorded history: call "
            f"#{position.call_index + 1} of {where} was task {seen[1]!r} in attempt {seen[0]}, "
            f"and is task {task_key!r} ({task_name}) now. The flow's code changed between "
            "attempts, or its calls depend on something other than its parameters and its "
            "tasks' results (the time, randomness, an external read outside a task). Run it "
            "again without replay: `strato flow-run retry --from-scratch <id>`."
        )

    def recorded(self, key: str) -> TaskRun | None:
        """The completed task run recorded under `key`, or None."""
        return self.completed.get(key)
