"""The AWS backend: flow runs and task runs in DynamoDB, logs in CloudWatch Logs.

Flow run transitions are conditional writes on the run's `version` (optimistic
concurrency); the rules themselves come from `orchestration.transitions`, the same
function the memory backend uses. Task runs are written behind (see task_runs.py).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from stratoflow import resources
from stratoflow.backends.aws.changed_runs import ChangedRun, flow_runs_changed_since
from stratoflow.backends.aws.flow_run_lists import FlowRunLists
from stratoflow.backends.aws.heartbeats import read_heartbeats, write_heartbeat
from stratoflow.backends.aws.held_task_runs import HeldTaskRuns
from stratoflow.backends.aws.items import (
    creation_seq,
    flow_run_from_item,
    flow_run_state_attributes,
    flow_run_to_item,
    task_run_from_item,
    task_run_to_item,
    to_attribute,
)
from stratoflow.backends.aws.result_keys import ParameterStoreResultKeys
from stratoflow.backends.aws.result_refs import ResultRefs
from stratoflow.backends.aws.results import S3ResultStore
from stratoflow.backends.aws.task_runs import TaskRunWriter
from stratoflow.exceptions import ConflictError, ObjectNotFound
from stratoflow.models import FlowRun, LogEntry, TaskRun, assign_flow_run
from stratoflow.orchestration.transitions import TransitionResult, apply_transition
from stratoflow.result_signing import ResultVerifier
from stratoflow.states import State, StateType

if TYPE_CHECKING:
    from stratoflow.backends.aws.artifacts import DynamoArtifactStore
    from stratoflow.backends.aws.blocks import DynamoBlockStore
    from stratoflow.backends.aws.clients import AwsClients
    from stratoflow.backends.aws.logs import CloudWatchLogShipper
    from stratoflow.backends.aws.run_inputs import DynamoRunInputStore
    from stratoflow.backends.aws.variables import DynamoVariableStore

CONFLICT_ATTEMPTS = 8


def _is_conditional_failure(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


class AwsBackend:
    def __init__(
        self,
        clients: AwsClients,
        names: resources.ResourceNames,
        *,
        logs: CloudWatchLogShipper,
        task_run_flush_seconds: float = 1.0,
    ) -> None:
        self.clients = clients
        self.dynamodb = clients.dynamodb
        self.table = names.table
        # The only result store runs are read from: built from settings, never from an item.
        self.result_store = S3ResultStore(clients.s3, names.results_bucket)
        self.result_keys = ParameterStoreResultKeys(
            clients.ssm, clients.secretsmanager, names.queue_prefix
        )
        self.results = ResultRefs(self.result_store, ResultVerifier(self.result_keys))
        self.logs = logs
        self.task_runs = TaskRunWriter(
            self.dynamodb, self.table, flush_seconds=task_run_flush_seconds
        )
        self.held = HeldTaskRuns(self.dynamodb, self.table, self.results)
        """Background task runs a task worker of this process claimed: conditional writes."""
        self._flow_runs: dict[str, FlowRun] = {}
        """Flow runs this process created or changed: the objects the engine holds."""
        self._names = names
        self.lists = FlowRunLists(self.dynamodb, self.table, self.results)

    # Variables, artifacts and blocks: built (and their modules and pydantic models loaded)
    # on first use, so that a Lambda that never touches them does not pay for them at its
    # cold start (bench/cold_start.py, tests/unit/test_handler_imports.py).

    @cached_property
    def variables(self) -> DynamoVariableStore:
        from stratoflow.backends.aws.variables import DynamoVariableStore

        return DynamoVariableStore(self.dynamodb, self.table)

    @cached_property
    def artifacts(self) -> DynamoArtifactStore:
        from stratoflow.backends.aws.artifacts import DynamoArtifactStore

        return DynamoArtifactStore(
            self.dynamodb, self.clients.s3, self.table, self._names.results_bucket
        )

    @cached_property
    def blocks(self) -> DynamoBlockStore:
        from stratoflow.backends.aws.blocks import DynamoBlockStore

        return DynamoBlockStore(
            self.dynamodb, self.clients.secretsmanager, self.table, self._names.queue_prefix
        )

    @cached_property
    def run_inputs(self) -> DynamoRunInputStore:
        from stratoflow.backends.aws.run_inputs import DynamoRunInputStore

        return DynamoRunInputStore(self.dynamodb, self.table)

    # Flow runs

    def create_flow_run(self, run: FlowRun) -> FlowRun:
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item=flow_run_to_item(run),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                raise ConflictError(f"Flow run {run.id} already exists") from None
            raise
        # Not kept: only a run adopted by an engine of this process is written from a local
        # copy (a deployment's run is created here but run by another process).
        return run

    def read_flow_run(self, flow_run_id: str, *, consistent: bool = True) -> FlowRun:
        response = self.dynamodb.get_item(
            TableName=self.table,
            Key=_key(resources.flow_run_key(flow_run_id)),
            ConsistentRead=consistent,
        )
        item = response.get("Item")
        if item is None:
            raise ObjectNotFound(f"No flow run with id {flow_run_id!r}")
        return flow_run_from_item(item, self.results)

    def list_flow_runs(
        self,
        *,
        limit: int | None = None,
        since: datetime | None = None,
        where: Callable[[FlowRun], bool] | None = None,
    ) -> list[FlowRun]:
        """Newest first by creation, over the last 30 days (from `since` on), stopping once
        `limit` runs are found (flow_run_lists.py: finished runs by day, active runs)."""
        return self.lists.newest(limit=limit, since=since, where=where)

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
        # Every write carries a transition id: when a write was applied but its response
        # was lost, botocore's retry fails the version condition, and the re-read run
        # shows the id, so the transition is reported as done instead of applied twice.
        transition_id = transition_id or str(uuid.uuid4())
        run = self._flow_runs.get(flow_run_id)
        adopted = run is not None
        if run is None:
            # The caller's own read saves this one: the write below is conditional on its
            # version, so a stale copy costs a conflict and a fresh read, never a lost write.
            if seen is not None and seen.id == flow_run_id:
                run = seen
            else:
                run = self.read_flow_run(flow_run_id)
        elif expected_version is not None and expected_version != run.version:
            # The copy held here may be stale (another client changed the run): the
            # caller's version is checked against the stored run, not against it.
            _refresh(run, self.read_flow_run(flow_run_id))
        for _ in range(CONFLICT_ATTEMPTS):
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
            try:
                self._write_transition(run, seen_version)
            except ClientError as exc:
                _restore(run, saved)
                if not _is_conditional_failure(exc):
                    raise
                stored = self.read_flow_run(flow_run_id)
                # An adopted run keeps what its engine owns; any other copy is replaced
                # whole (it may be older than its state: run count, times).
                if adopted:
                    _refresh(run, stored)
                else:
                    assign_flow_run(run, stored)
                continue
            if run.state is not None and run.state.is_final():
                self._flow_runs.pop(flow_run_id, None)  # nothing more to write
            # A run read above is not kept: the next write (a worker claiming its retry, a
            # sweep) must start from a fresh read, not from this copy's run count and times.
            return result
        raise ConflictError(
            f"Flow run {flow_run_id} kept changing under {CONFLICT_ATTEMPTS} attempts to set "
            f"{state.name!r}; try again."
        )

    def _write_transition(self, run: FlowRun, seen_version: int) -> None:
        attributes = flow_run_state_attributes(run)
        names: dict[str, str] = {"#version": "version"}
        values: dict[str, Any] = {
            ":seen": to_attribute(seen_version),
            ":next": to_attribute(run.version),
        }
        sets = ["#version = :next"]
        removes = []
        for index, (name, value) in enumerate(attributes.items()):
            names[f"#a{index}"] = name
            if value is None:
                removes.append(f"#a{index}")
            else:
                values[f":a{index}"] = to_attribute(value)
                sets.append(f"#a{index} = :a{index}")
        expression = "SET " + ", ".join(sets)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        self.dynamodb.update_item(
            TableName=self.table,
            Key=_key(resources.flow_run_key(run.id)),
            UpdateExpression=expression,
            ConditionExpression="#version = :seen",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def adopt_flow_run(self, run: FlowRun) -> None:
        self._flow_runs[run.id] = run

    def update_flow_run(self, flow_run_id: str, **fields: Any) -> None:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets = []
        for index, (name, value) in enumerate(fields.items()):
            names[f"#f{index}"] = name
            values[f":f{index}"] = to_attribute(
                value.isoformat() if isinstance(value, datetime) else value
            )
            sets.append(f"#f{index} = :f{index}")
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=_key(resources.flow_run_key(flow_run_id)),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                raise ObjectNotFound(f"No flow run with id {flow_run_id!r}") from None
            raise
        local = self._flow_runs.get(flow_run_id)
        if local is not None:
            for name, value in fields.items():
                setattr(local, name, value)

    def record_flow_run_heartbeat(self, run: FlowRun, at: datetime) -> None:
        write_heartbeat(self.dynamodb, self.table, run, at)

    def flow_run_heartbeats(self, flow_run_ids: Sequence[str]) -> dict[str, datetime]:
        return read_heartbeats(self.dynamodb, self.table, flow_run_ids)

    def list_flow_runs_by_state(
        self,
        state_type: StateType,
        *,
        until: datetime | None = None,
        limit: int | None = None,
        since: datetime | None = None,
    ) -> list[FlowRun]:
        return self.lists.by_state(state_type, until=until, limit=limit, since=since)

    def active_runs_snapshot(self) -> AbstractContextManager[None]:
        return self.lists.snapshot()

    def list_flow_runs_changed_since(self, moment: datetime) -> Iterator[ChangedRun]:
        """Every flow run whose state may have changed at or after `moment`, with its item
        (deserialized, with its state history): the runs that are not final first, then
        the final ones latest change first (changed_runs.py). For the flow-run events
        derived on read (stratoflow.events.on_read)."""
        return flow_runs_changed_since(self.dynamodb, self.table, moment)

    def list_flow_runs_of_deployment(
        self, deployment_name: str, *, limit: int | None = None
    ) -> list[FlowRun]:
        return self.lists.of_deployment(deployment_name, limit=limit)

    def delete_flow_run(self, flow_run_id: str, *, only_in: StateType | None = None) -> bool:
        condition: dict[str, Any] = {"ConditionExpression": "attribute_exists(pk)"}
        if only_in is not None:
            condition = {
                "ConditionExpression": "state_type = :t",
                "ExpressionAttributeValues": {":t": to_attribute(only_in.value)},
            }
        try:
            self.dynamodb.delete_item(
                TableName=self.table, Key=_key(resources.flow_run_key(flow_run_id)), **condition
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        self._flow_runs.pop(flow_run_id, None)
        self.dynamodb.delete_item(
            TableName=self.table, Key=_key(resources.flow_run_heartbeat_key(flow_run_id))
        )
        for task_run in self.list_task_runs(flow_run_id):
            self.dynamodb.delete_item(
                TableName=self.table, Key=_key(resources.task_run_key(flow_run_id, task_run.id))
            )
        return True

    # Task runs

    def create_task_run(self, run: TaskRun) -> TaskRun:
        self.task_runs.track(run)
        return run

    def read_task_run(self, task_run_id: str, *, flow_run_id: str | None = None) -> TaskRun:
        # A held background run is not read from this process's copy: its writes are not
        # behind, and someone else (a cancel, the crash sweep) may have changed it since.
        live = self.task_runs.live.get(task_run_id)
        if live is not None:
            return live
        return task_run_from_item(self._task_run_item(task_run_id, flow_run_id), self.results)

    def _task_run_item(self, task_run_id: str, flow_run_id: str | None) -> dict[str, Any]:
        response = self.dynamodb.get_item(
            TableName=self.table,
            Key=_key(resources.task_run_key(flow_run_id, task_run_id)),
            ConsistentRead=True,
        )
        item = response.get("Item")
        if item is None:
            raise ObjectNotFound(f"No task run with id {task_run_id!r}")
        return item

    def list_task_runs(self, flow_run_id: str) -> list[TaskRun]:
        self.task_runs.flush()
        found: list[tuple[TaskRun, int]] = []
        paginator = self.dynamodb.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
            ExpressionAttributeNames={"#pk": resources.PARTITION_KEY, "#sk": resources.SORT_KEY},
            ExpressionAttributeValues={
                ":pk": to_attribute(resources.flow_run_key(flow_run_id)[resources.PARTITION_KEY]),
                ":prefix": to_attribute(resources.TASK_RUN_SORT_PREFIX),
            },
            ConsistentRead=True,
        ):
            for item in page["Items"]:
                seq = creation_seq(item)
                found.append((task_run_from_item(item, self.results), -1 if seq is None else seq))
        # Creation order: by `created`, then by creation sequence (equal `created` times).
        earliest = datetime.min.replace(tzinfo=UTC)
        found.sort(key=lambda pair: (pair[0].created or earliest, pair[1], pair[0].name))
        return [run for run, _ in found]

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
        if self.held.holds(task_run_id):
            return self.held.set_state(
                task_run_id,
                state,
                expected_version=expected_version,
                transition_id=transition_id,
                force=force,
            )
        run = self.task_runs.live.get(task_run_id)
        if run is None:
            return self._set_stored_task_run_state(
                task_run_id, state, flow_run_id, expected_version, transition_id, force
            )
        result = apply_transition(
            run,
            state,
            expected_version=expected_version,
            transition_id=transition_id,
            force=force,
        )
        if result.applied:
            self.task_runs.mark_dirty(run)
        return result

    def _set_stored_task_run_state(
        self,
        task_run_id: str,
        state: State,
        flow_run_id: str | None,
        expected_version: int | None,
        transition_id: str | None,
        force: bool,
    ) -> TransitionResult:
        """A task run that no engine here owns (an operator's change): conditional put."""
        stored = self._task_run_item(task_run_id, flow_run_id)
        run = task_run_from_item(stored, self.results)
        seen_version = run.version
        result = apply_transition(
            run,
            state,
            expected_version=expected_version,
            transition_id=transition_id,
            force=force,
        )
        if result.applied:
            try:
                self.dynamodb.put_item(
                    TableName=self.table,
                    Item=task_run_to_item(run, seq=creation_seq(stored)),
                    ConditionExpression="#version = :seen",
                    ExpressionAttributeNames={"#version": "version"},
                    ExpressionAttributeValues={":seen": to_attribute(seen_version)},
                )
            except ClientError as exc:
                if _is_conditional_failure(exc):
                    raise ConflictError(
                        f"Task run {task_run_id} changed while setting {state.name!r}"
                    ) from None
                raise
        return result

    # Logs

    def write_logs(self, entries: Sequence[LogEntry]) -> None:
        self.logs.write(entries)

    def read_logs(
        self, flow_run_id: str, *, task_run_id: str | None = None, since: datetime | None = None
    ) -> list[LogEntry]:
        self.logs.flush()
        return self.logs.read(flow_run_id, task_run_id, start_time=since)

    def flush(self) -> None:
        """Make everything written so far durable (task runs, then log lines)."""
        self.task_runs.flush()
        self.logs.flush()

    def close(self) -> None:
        """Write everything still buffered and stop the background writers."""
        try:
            self.task_runs.close()
        finally:
            self.logs.close()


def _key(key: dict[str, str]) -> dict[str, Any]:
    return {name: to_attribute(value) for name, value in key.items()}


def _snapshot(run: FlowRun) -> tuple[Any, ...]:
    return (run.state, list(run.state_history), run.version, list(run.recent_transition_ids))


def _restore(run: FlowRun, saved: tuple[Any, ...]) -> None:
    run.state, run.state_history, run.version, run.recent_transition_ids = saved


def _refresh(run: FlowRun, stored: FlowRun) -> None:
    """Take what others may have changed (the state); keep what this engine owns."""
    run.state = stored.state
    run.state_history = copy.copy(stored.state_history)
    run.version = stored.version
    run.recent_transition_ids = list(stored.recent_transition_ids)
    run.heartbeat = stored.heartbeat
