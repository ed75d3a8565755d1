"""The background task runs this process holds (claimed from the task queue), each change
written with a condition on what this process wrote last.

The task runs of a flow are written behind, without condition (task_runs.py): only their
flow run's engine writes them. A background task run has other writers while its worker
runs it: an operator cancels it, the crash sweep crashes it when the worker's lease ended
(stratoflow.background.sweep). So each change of a held run is one PutItem conditional on
the run's version, and a write that finds the run changed does not land. What the run
became decides what follows (`_stop`): Cancelling → it is written Cancelled (whatever the
engine proposed: orchestration.cancelling), anything else (Cancelled, Crashed, handed to
another worker) is left as it is; either way the engine is stopped with TaskRunStopped.

The worker renews its lease with `renew`: the heartbeat and `sweep_due` only, without a
new version (the version counts state changes; the event stream derives states from it).
Whoever acts on a held run as someone else saw it (the sweep, a worker taking over a run
whose lease ended) writes on the condition that its heartbeat is the one they saw too, so
a lease renewed meanwhile is never crashed.
"""

from __future__ import annotations

import copy
import enum
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from stratoflow import resources
from stratoflow.backends.aws.items import (
    task_run_due_attributes,
    task_run_from_item,
    task_run_to_item,
    to_attribute,
)
from stratoflow.backends.aws.result_refs import ResultRefs
from stratoflow.exceptions import ConflictError, ObjectNotFound, TaskRunStopped
from stratoflow.models import TaskRun
from stratoflow.orchestration.cancelling import cancelled_instead, stopped_message
from stratoflow.orchestration.transitions import (
    TransitionResult,
    apply_transition,
    was_applied,
)
from stratoflow.states import State, StateType

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CONFLICT_ATTEMPTS = 4
"""Reads of a run that keeps changing while a stop is written, before giving up."""


class _Unchecked(enum.Enum):
    HEARTBEAT = "any heartbeat"


ANY_HEARTBEAT = _Unchecked.HEARTBEAT
"""`put_task_run(seen_heartbeat=...)`: no condition on the heartbeat."""


def _key(run_id: str) -> dict[str, Any]:
    return {k: to_attribute(v) for k, v in resources.task_run_key(None, run_id).items()}


def _is_conditional_failure(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


def put_task_run(
    client: DynamoDBClient,
    table: str,
    run: TaskRun,
    *,
    seen_version: int,
    seen_heartbeat: datetime | _Unchecked | None = ANY_HEARTBEAT,
) -> None:
    """Write the background run `run` whole, if the stored item is at `seen_version` (and
    has the heartbeat `seen_heartbeat`, when given); ConflictError otherwise."""
    condition = "#version = :seen"
    names = {"#version": "version"}
    values: dict[str, Any] = {":seen": to_attribute(seen_version)}
    if not isinstance(seen_heartbeat, _Unchecked):
        names["#heartbeat"] = "heartbeat"
        if seen_heartbeat is None:
            condition += " AND attribute_not_exists(#heartbeat)"
        else:
            condition += " AND #heartbeat = :heartbeat"
            values[":heartbeat"] = to_attribute(seen_heartbeat.isoformat())
    try:
        client.put_item(
            TableName=table,
            Item=task_run_to_item(run),
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if _is_conditional_failure(exc):
            raise ConflictError(f"Task run {run.id} changed since version {seen_version}") from None
        raise


def write_states(
    client: DynamoDBClient,
    table: str,
    run: TaskRun,
    states: Sequence[State],
    *,
    heartbeat: datetime | None,
    sweep_due: datetime | None,
    force: bool = False,
) -> None:
    """Apply `states` to the background run `run` (as read; changed in place) and write
    it with `heartbeat` and `sweep_due`, on the condition that the stored run still has
    the version and heartbeat read. Raises ConflictError
    when the run changed since, InvalidTransitionError when a state does not apply
    (forced when `force`: a crashed run going on to its retry)."""
    seen_version, seen_heartbeat = run.version, run.heartbeat
    for state in states:
        apply_transition(run, state, transition_id=str(uuid.uuid4()), force=force)
        if state.is_final():
            run.end_time = state.timestamp
    run.heartbeat = heartbeat
    run.sweep_due = sweep_due
    put_task_run(client, table, run, seen_version=seen_version, seen_heartbeat=seen_heartbeat)


def postpone(client: DynamoDBClient, table: str, run: TaskRun, due: datetime) -> bool:
    """Move the `sweep_due` of a background run held by none (a retry waiting for its
    worker) to `due`. False when it changed since it was read (a worker claimed it)."""
    return _move_due(client, table, run, due, heartbeat=None)


def _move_due(
    client: DynamoDBClient,
    table: str,
    run: TaskRun,
    due: datetime,
    *,
    heartbeat: datetime | None,
) -> bool:
    """Set a run's `sweep_due` (and its heartbeat, when it is held), without a new version:
    nothing about its state changed. Conditional on the version of `run` (and, for a run
    held by none, on having no heartbeat); False when that condition failed."""
    moved = copy.copy(run)
    moved.sweep_due = due
    attributes: dict[str, str] = {"sweep_due": due.isoformat(), **task_run_due_attributes(moved)}
    condition = "#version = :seen"
    if heartbeat is None:
        condition += " AND attribute_not_exists(#heartbeat)"
    else:
        attributes["heartbeat"] = heartbeat.isoformat()
    names = {f"#a{i}": name for i, name in enumerate(attributes)}
    values: dict[str, Any] = {
        f":a{i}": to_attribute(value) for i, value in enumerate(attributes.values())
    }
    values[":seen"] = to_attribute(run.version)
    try:
        client.update_item(
            TableName=table,
            Key=_key(run.id),
            UpdateExpression="SET " + ", ".join(f"{n} = :{n[1:]}" for n in names),
            ConditionExpression=condition,
            ExpressionAttributeNames={**names, "#version": "version", "#heartbeat": "heartbeat"}
            if heartbeat is None
            else {**names, "#version": "version"},
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if _is_conditional_failure(exc):
            return False
        raise
    return True


def read_background_run(
    client: DynamoDBClient, table: str, refs: ResultRefs, run_id: str
) -> TaskRun:
    response = client.get_item(TableName=table, Key=_key(run_id), ConsistentRead=True)
    item = response.get("Item")
    if item is None:
        raise ObjectNotFound(f"No task run with id {run_id!r}")
    return task_run_from_item(item, refs)


@dataclass
class _Held:
    run: TaskRun
    lock: threading.Lock = field(default_factory=threading.Lock)


class HeldTaskRuns:
    def __init__(self, client: DynamoDBClient, table: str, refs: ResultRefs) -> None:
        self.client = client
        self.table = table
        self.refs = refs
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()

    def holds(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._held

    def release(self, run_id: str) -> None:
        """Forget a run (its engine is done with it, whatever its state)."""
        with self._lock:
            self._held.pop(run_id, None)

    def claim(
        self,
        run: TaskRun,
        states: Sequence[State],
        *,
        now: datetime,
        lease_seconds: float,
        retries: int,
        force: bool = False,
    ) -> TaskRun:
        """Hold `run`, as the caller read it: apply `states` (`write_states`), record the
        task's `retries`, start its lease and write it. ConflictError when the run
        changed since it was read (another worker has it)."""
        run.retries = retries
        try:
            write_states(
                self.client,
                self.table,
                run,
                states,
                heartbeat=now,
                sweep_due=now + timedelta(seconds=lease_seconds),
                force=force,
            )
        except ConflictError:
            # The write may have landed with its response lost (botocore sent it again).
            if not run.recent_transition_ids or not self._landed(
                run.id, run.recent_transition_ids[-1]
            ):
                raise
        with self._lock:
            self._held[run.id] = _Held(run)
        return run

    def renew(self, run_id: str, now: datetime, lease_seconds: float) -> bool:
        """Renew the lease of a held run that is not final: its heartbeat and `sweep_due`.
        A run an operator set Cancelling meanwhile is taken as it is (its engine is
        stopped at its next write, which then writes Cancelled) and renewed: it is
        Cancelling while its attempt still runs. False when the run is no longer this
        process's to renew: final, not held, or changed otherwise (crashed by the sweep,
        handed to another worker; the engine's next write finds out)."""
        with self._lock:
            held = self._held.get(run_id)
        if held is None:
            return False
        with held.lock:
            run = held.run
            for _ in range(2):
                if run.state is None or run.state.is_final():
                    return False
                if self._renew(run, now, lease_seconds):
                    return True
                stored = read_background_run(self.client, self.table, self.refs, run_id)
                state = stored.state
                if state is None or state.type is not StateType.CANCELLING:
                    return False
                _adopt(run, stored)
            return False

    def _renew(self, run: TaskRun, now: datetime, lease_seconds: float) -> bool:
        due = now + timedelta(seconds=lease_seconds)
        if not _move_due(self.client, self.table, run, due, heartbeat=now):
            return False
        run.heartbeat, run.sweep_due = now, due
        return True

    def set_state(
        self,
        run_id: str,
        state: State,
        *,
        expected_version: int | None = None,
        transition_id: str | None = None,
        force: bool = False,
    ) -> TransitionResult:
        with self._lock:
            held = self._held[run_id]
        with held.lock:
            run = held.run
            if not force and cancelled_instead(run, state) is not None:
                # Its copy is Cancelling: cancelled from this process, or taken from the
                # table by a lease renewal after another client cancelled it.
                self._stop(run, state)
            transition_id = transition_id or str(uuid.uuid4())
            seen_version = run.version
            saved = _snapshot(run)
            result = apply_transition(
                run,
                state,
                expected_version=expected_version,
                transition_id=transition_id,
                force=force,
            )
            if not result.applied:
                return result
            final = state.is_final()
            if final:
                run.sweep_due = None  # nothing more for the sweep to look at
            try:
                put_task_run(self.client, self.table, run, seen_version=seen_version)
            except ConflictError:
                if not self._landed(run_id, transition_id):
                    _restore(run, saved)
                    self._stop(run, state)
        if final:
            self.release(run_id)
        return result

    def _landed(self, run_id: str, transition_id: str) -> bool:
        """Whether a write whose condition failed had in fact been applied (botocore sent
        it again after a lost response: the stored run carries its transition id)."""
        if not transition_id:
            return False
        try:
            stored = read_background_run(self.client, self.table, self.refs, run_id)
        except ObjectNotFound:
            return False
        return was_applied(stored.recent_transition_ids, transition_id)

    def _stop(self, run: TaskRun, proposed: State) -> None:
        """The run changed under this process: write Cancelled if it is Cancelling, take
        its stored state, forget it and raise TaskRunStopped."""
        for _ in range(CONFLICT_ATTEMPTS):
            stored = read_background_run(self.client, self.table, self.refs, run.id)
            cancelled = cancelled_instead(stored, proposed)
            if cancelled is not None:
                seen_version, seen_heartbeat = stored.version, stored.heartbeat
                apply_transition(stored, cancelled, transition_id=str(uuid.uuid4()))
                stored.end_time = cancelled.timestamp
                stored.sweep_due = None
                try:
                    put_task_run(
                        self.client,
                        self.table,
                        stored,
                        seen_version=seen_version,
                        seen_heartbeat=seen_heartbeat,
                    )
                except ConflictError:
                    continue
            _adopt(run, stored)
            self.release(run.id)
            assert stored.state is not None
            raise TaskRunStopped(stopped_message(run, stored.state), stored.state)
        raise ConflictError(
            f"Task run {run.id} kept changing under {CONFLICT_ATTEMPTS} attempts to stop it; "
            "its worker stops running it, and the crash sweep settles it."
        )


def _snapshot(run: TaskRun) -> tuple[Any, ...]:
    return (
        run.state,
        list(run.state_history),
        run.version,
        list(run.recent_transition_ids),
        run.sweep_due,
    )


def _restore(run: TaskRun, saved: tuple[Any, ...]) -> None:
    (run.state, run.state_history, run.version, run.recent_transition_ids, run.sweep_due) = saved


def _adopt(run: TaskRun, stored: TaskRun) -> None:
    """Take the stored run's state into this process's copy (the engine's record)."""
    run.state = stored.state
    run.state_history = list(stored.state_history)
    run.version = stored.version
    run.recent_transition_ids = list(stored.recent_transition_ids)
    run.heartbeat = stored.heartbeat
    run.sweep_due = stored.sweep_due
    run.end_time = stored.end_time
