"""An in-process backend: the default for local runs and the reference for the contract."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence

from stratoflow.exceptions import ObjectNotFound
from stratoflow.models import FlowRun, LogEntry, TaskRun
from stratoflow.orchestration.transitions import TransitionResult, apply_transition
from stratoflow.states import State


class MemoryBackend:
    """Keeps everything in dictionaries guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flow_runs: dict[str, FlowRun] = {}
        self._task_runs: dict[str, TaskRun] = {}
        self._task_runs_by_flow: defaultdict[str | None, list[str]] = defaultdict(list)
        self._logs: defaultdict[str | None, list[LogEntry]] = defaultdict(list)

    def create_flow_run(self, run: FlowRun) -> FlowRun:
        with self._lock:
            self._flow_runs[run.id] = run
        return run

    def read_flow_run(self, flow_run_id: str) -> FlowRun:
        try:
            return self._flow_runs[flow_run_id]
        except KeyError:
            raise ObjectNotFound(f"No flow run with id {flow_run_id!r}") from None

    def list_flow_runs(self, *, limit: int | None = None) -> list[FlowRun]:
        with self._lock:
            runs = list(reversed(self._flow_runs.values()))
        return runs[:limit] if limit is not None else runs

    def set_flow_run_state(
        self,
        flow_run_id: str,
        state: State,
        *,
        expected_version: int | None = None,
        transition_id: str | None = None,
        force: bool = False,
    ) -> TransitionResult:
        with self._lock:
            run = self.read_flow_run(flow_run_id)
            return apply_transition(
                run,
                state,
                expected_version=expected_version,
                transition_id=transition_id,
                force=force,
            )

    def create_task_run(self, run: TaskRun) -> TaskRun:
        with self._lock:
            self._task_runs[run.id] = run
            self._task_runs_by_flow[run.flow_run_id].append(run.id)
        return run

    def read_task_run(self, task_run_id: str, *, flow_run_id: str | None = None) -> TaskRun:
        try:
            return self._task_runs[task_run_id]
        except KeyError:
            raise ObjectNotFound(f"No task run with id {task_run_id!r}") from None

    def list_task_runs(self, flow_run_id: str) -> list[TaskRun]:
        with self._lock:
            return [self._task_runs[i] for i in self._task_runs_by_flow.get(flow_run_id, ())]

    def set_task_run_state(
        self,
        task_run_id: str,
        state: State,
        *,
        expected_version: int | None = None,
        transition_id: str | None = None,
        force: bool = False,
        flow_run_id: str | None = None,
    ) -> TransitionResult:
        with self._lock:
            run = self.read_task_run(task_run_id)
            return apply_transition(
                run,
                state,
                expected_version=expected_version,
                transition_id=transition_id,
                force=force,
            )

    def write_logs(self, entries: Sequence[LogEntry]) -> None:
        with self._lock:
            for entry in entries:
                self._logs[entry.flow_run_id].append(entry)

    def read_logs(self, flow_run_id: str, *, task_run_id: str | None = None) -> list[LogEntry]:
        with self._lock:
            entries = list(self._logs.get(flow_run_id, ()))
        if task_run_id is not None:
            entries = [e for e in entries if e.task_run_id == task_run_id]
        return entries

    def flush(self) -> None:
        """Nothing to do: every write is already visible."""
