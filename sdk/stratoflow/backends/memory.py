"""An in-process backend: the default for local runs and the reference for the contract."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from stratoflow.exceptions import ObjectNotFound, TaskRunStopped
from stratoflow.models import FlowRun, LogEntry, TaskRun, assign_flow_run
from stratoflow.orchestration.cancelling import cancelled_instead, stopped_message
from stratoflow.orchestration.ordering import in_window, state_sort_moment
from stratoflow.orchestration.transitions import TransitionResult, apply_transition
from stratoflow.states import State, StateType

if TYPE_CHECKING:
    from stratoflow.backends.memory_stores import (
        MemoryArtifactStore,
        MemoryBlockStore,
        MemoryRunInputStore,
        MemoryVariableStore,
    )


class MemoryBackend:
    """Keeps everything in dictionaries guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flow_runs: dict[str, FlowRun] = {}
        self._task_runs: dict[str, TaskRun] = {}
        self._task_runs_by_flow: defaultdict[str | None, list[str]] = defaultdict(list)
        self._logs: defaultdict[str | None, list[LogEntry]] = defaultdict(list)

    # Built on first use: the Lambda handlers import this module (through the default
    # services) and should not load the pydantic models of these features at start.

    @cached_property
    def variables(self) -> MemoryVariableStore:
        from stratoflow.backends.memory_stores import MemoryVariableStore

        return MemoryVariableStore()

    @cached_property
    def artifacts(self) -> MemoryArtifactStore:
        from stratoflow.backends.memory_stores import MemoryArtifactStore

        return MemoryArtifactStore()

    @cached_property
    def blocks(self) -> MemoryBlockStore:
        from stratoflow.backends.memory_stores import MemoryBlockStore

        return MemoryBlockStore()

    @cached_property
    def run_inputs(self) -> MemoryRunInputStore:
        from stratoflow.backends.memory_stores import MemoryRunInputStore

        return MemoryRunInputStore()

    def create_flow_run(self, run: FlowRun) -> FlowRun:
        with self._lock:
            self._flow_runs[run.id] = run
        return run

    def read_flow_run(self, flow_run_id: str, *, consistent: bool = True) -> FlowRun:
        try:
            return self._flow_runs[flow_run_id]
        except KeyError:
            raise ObjectNotFound(f"No flow run with id {flow_run_id!r}") from None

    def list_flow_runs(
        self,
        *,
        limit: int | None = None,
        since: datetime | None = None,
        where: Callable[[FlowRun], bool] | None = None,
    ) -> list[FlowRun]:
        with self._lock:
            runs = list(reversed(self._flow_runs.values()))
        if since is not None:
            runs = [r for r in runs if r.created is None or r.created >= since]
        if where is not None:
            runs = [r for r in runs if where(r)]
        return runs[:limit] if limit is not None else runs

    def set_flow_run_state(
        self,
        flow_run_id: str,
        state: State,
        *,
        expected_version: int | None = None,
        transition_id: str | None = None,
        force: bool = False,
        seen: FlowRun | None = None,
    ) -> TransitionResult:
        with self._lock:
            run = self.read_flow_run(flow_run_id)
            try:
                return apply_transition(
                    run,
                    state,
                    expected_version=expected_version,
                    transition_id=transition_id,
                    force=force,
                )
            finally:
                if seen is not None and seen is not run and seen.id == run.id:
                    assign_flow_run(seen, run)  # the live record decides here; a copy follows it

    def adopt_flow_run(self, run: FlowRun) -> None:
        with self._lock:
            self._flow_runs[run.id] = run

    def update_flow_run(self, flow_run_id: str, **fields: Any) -> None:
        with self._lock:
            run = self.read_flow_run(flow_run_id)
            for name, value in fields.items():
                setattr(run, name, value)

    def record_flow_run_heartbeat(self, run: FlowRun, at: datetime) -> None:
        with self._lock:
            self.read_flow_run(run.id).heartbeat = at

    def flow_run_heartbeats(self, flow_run_ids: Sequence[str]) -> dict[str, datetime]:
        with self._lock:
            runs = (self._flow_runs.get(i) for i in flow_run_ids)
            return {r.id: r.heartbeat for r in runs if r is not None and r.heartbeat}

    def list_flow_runs_by_state(
        self,
        state_type: StateType,
        *,
        until: datetime | None = None,
        limit: int | None = None,
        since: datetime | None = None,
    ) -> list[FlowRun]:
        with self._lock:
            runs = [r for r in self._flow_runs.values() if r.state and r.state.type is state_type]
        keyed = sorted(
            ((state_sort_moment(r, r.state), r) for r in runs if r.state is not None),
            key=lambda pair: pair[0],
        )
        chosen = [r for moment, r in keyed if in_window(moment, since, until)]
        return chosen[:limit] if limit is not None else chosen

    def active_runs_snapshot(self) -> AbstractContextManager[None]:
        return nullcontext()  # every read is of memory already

    def list_flow_runs_of_deployment(
        self, deployment_name: str, *, limit: int | None = None
    ) -> list[FlowRun]:
        runs = [r for r in self.list_flow_runs() if r.deployment_name == deployment_name]
        return runs[:limit] if limit is not None else runs

    def delete_flow_run(self, flow_run_id: str, *, only_in: StateType | None = None) -> bool:
        with self._lock:
            run = self._flow_runs.get(flow_run_id)
            if run is None:
                return False
            if only_in is not None and (run.state is None or run.state.type is not only_in):
                return False
            del self._flow_runs[flow_run_id]
            for task_run_id in self._task_runs_by_flow.pop(flow_run_id, []):
                self._task_runs.pop(task_run_id, None)
            return True

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
            cancelled = None if force else cancelled_instead(run, state)
            if cancelled is not None:  # a Cancelling run ends Cancelled, its engine stops
                apply_transition(run, cancelled)
                run.end_time = cancelled.timestamp
                raise TaskRunStopped(stopped_message(run, cancelled), cancelled)
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

    def read_logs(
        self, flow_run_id: str, *, task_run_id: str | None = None, since: datetime | None = None
    ) -> list[LogEntry]:
        with self._lock:
            entries = list(self._logs.get(flow_run_id, ()))
        if task_run_id is not None:
            entries = [e for e in entries if e.task_run_id == task_run_id]
        if since is not None:
            entries = [e for e in entries if e.timestamp >= since]
        return entries

    def flush(self) -> None:
        """Nothing to do: every write is already visible."""
