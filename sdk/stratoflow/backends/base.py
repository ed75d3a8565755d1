"""The backend port: what the engine needs from wherever runs are stored."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from stratoflow.models import FlowRun, LogEntry, RunInputRecord, TaskRun
from stratoflow.orchestration.transitions import TransitionResult
from stratoflow.states import State, StateType

if TYPE_CHECKING:
    from stratoflow.blocks.records import BlockDocument, BlockSecrets
    from stratoflow.records import ArtifactRecord, VariableRecord


@runtime_checkable
class Backend(Protocol):
    """Storage of flow runs, task runs, their states and their logs.

    State changes go through `set_*_state`, which applies the transition rules
    (`stratoflow.orchestration.transitions`) atomically. Variables and artifacts are
    kept by the backend's `variables` and `artifacts` stores.
    """

    @property
    def variables(self) -> VariableStore: ...

    @property
    def artifacts(self) -> ArtifactStore: ...

    @property
    def blocks(self) -> BlockStore: ...

    @property
    def run_inputs(self) -> RunInputStore: ...

    def create_flow_run(self, run: FlowRun) -> FlowRun: ...

    def read_flow_run(self, flow_run_id: str, *, consistent: bool = True) -> FlowRun:
        """The run; raises ObjectNotFound for an unknown id. `consistent=False` may return
        a slightly older version of the run (or none for a run just created), for half
        the cost: only for readers to whom a stale run is harmless (say why)."""

    def list_flow_runs(
        self,
        *,
        limit: int | None = None,
        since: datetime | None = None,
        where: Callable[[FlowRun], bool] | None = None,
    ) -> list[FlowRun]:
        """Newest first; with `since`, only runs created at or after it; with `where`,
        only the runs it accepts (`limit` counts those). Reads no further than needed."""

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
        """Move the run to `state` through the transition table, with optimistic
        concurrency on its version. `seen`: the caller's own read of the run, used instead
        of reading it again (a stale one costs a conflict and a fresh read); on success it
        is the run as written, after a conflict the newest read."""

    def adopt_flow_run(self, run: FlowRun) -> None:
        """This process now runs `run`: its later transitions write this object's fields
        (run count, times, result) along with the state."""

    def update_flow_run(self, flow_run_id: str, **fields: Any) -> None:
        """Set attributes that are not part of the state (`enqueued_at`):
        no transition rules, no version change."""

    def record_flow_run_heartbeat(self, run: FlowRun, at: datetime) -> None:
        """Proof that the process running `run` is alive (the zombie sweep reads it)."""

    def flow_run_heartbeats(self, flow_run_ids: Sequence[str]) -> dict[str, datetime]:
        """The last heartbeat of each of these runs that has one."""

    def list_flow_runs_by_state(
        self,
        state_type: StateType,
        *,
        until: datetime | None = None,
        limit: int | None = None,
        since: datetime | None = None,
    ) -> list[FlowRun]:
        """Runs in a state type, oldest first: by expected start for SCHEDULED, by the
        time the state was entered otherwise (from `since`, up to `until`)."""

    def list_flow_runs_of_deployment(
        self, deployment_name: str, *, limit: int | None = None
    ) -> list[FlowRun]:
        """A deployment's runs, newest first."""

    def active_runs_snapshot(self) -> AbstractContextManager[None]:
        """Within it, this thread's listings of runs that are not final may come from one
        read (the scheduler's tick: its passes tolerate a view a few seconds old, since
        their writes are conditional on the version they read)."""

    def delete_flow_run(self, flow_run_id: str, *, only_in: StateType | None = None) -> bool:
        """Delete a run (and its task runs); with `only_in`, only while it is in that
        state type. Returns whether it was deleted."""

    def create_task_run(self, run: TaskRun) -> TaskRun: ...

    def read_task_run(self, task_run_id: str, *, flow_run_id: str | None = None) -> TaskRun:
        """The task run; `flow_run_id` locates it faster (the AWS backend needs it)."""

    def list_task_runs(self, flow_run_id: str) -> list[TaskRun]:
        """The task runs of one flow run, in creation order."""

    def set_task_run_state(
        self,
        task_run_id: str,
        state: State,
        *,
        expected_version: int | None = None,
        transition_id: str | None = None,
        force: bool = False,
        flow_run_id: str | None = None,
    ) -> TransitionResult: ...

    def write_logs(self, entries: Sequence[LogEntry]) -> None: ...

    def read_logs(
        self, flow_run_id: str, *, task_run_id: str | None = None, since: datetime | None = None
    ) -> list[LogEntry]:
        """The run's lines, oldest first; with `since`, those at or after it."""
        ...

    def flush(self) -> None:
        """Make everything written so far durable (backends may write behind)."""


class VariableStore(Protocol):
    """Named JSON values (`stratoflow.variables`); names are checked by the caller."""

    def read(self, name: str) -> VariableRecord | None: ...

    def write(
        self, name: str, value: Any, tags: list[str], *, now: datetime, overwrite: bool
    ) -> VariableRecord:
        """Create the variable, or replace its value and tags when `overwrite` (keeping
        its creation time); raises VariableAlreadyExists when it exists and not
        `overwrite`."""

    def delete(self, name: str) -> bool:
        """Whether there was a variable to delete."""

    def list_variables(self, *, limit: int | None = None) -> list[VariableRecord]:
        """By name."""


class RunInputStore(Protocol):
    """Inputs of flow runs by key (`stratoflow.input`), each written once."""

    def create(self, record: RunInputRecord) -> RunInputRecord:
        """Store the input; raises RunInputExists when its key is taken."""

    def read(self, flow_run_id: str, key: str) -> RunInputRecord | None: ...

    def list_inputs(
        self, flow_run_id: str, *, prefix: str = "", limit: int | None = None
    ) -> list[RunInputRecord]:
        """The run's inputs whose key starts with `prefix`, oldest first."""

    def delete(self, flow_run_id: str, key: str) -> bool:
        """Whether there was an input to delete."""


class ArtifactStore(Protocol):
    """Artifact versions (`stratoflow.artifacts`); records are checked by the caller.

    Listings are newest first and may leave a large body unread (`body_loaded`);
    `load_body` reads it.
    """

    def create(self, record: ArtifactRecord) -> ArtifactRecord: ...

    def read(self, artifact_id: str) -> ArtifactRecord:
        """With its body; raises ObjectNotFound for an unknown id."""

    def update_progress(
        self, artifact_id: str, progress: float, *, description: str | None, now: datetime
    ) -> ArtifactRecord:
        """Set a progress artifact's progress (and description when given)."""

    def latest(self, key: str | None = None) -> ArtifactRecord | None:
        """The newest version of `key` (of any artifact when None), with its body."""

    def versions(self, key: str, *, limit: int | None = None) -> list[ArtifactRecord]: ...

    def of_flow_run(self, flow_run_id: str, *, limit: int | None = None) -> list[ArtifactRecord]:
        """The artifacts created in a flow run and its task runs."""

    def recent(self, *, limit: int | None = None) -> list[ArtifactRecord]:
        """Every artifact, newest first (the AWS backend looks back 30 days)."""

    def load_body(self, record: ArtifactRecord) -> ArtifactRecord:
        """`record` with its body read (raises ArtifactBodyUnavailable)."""


class BlockStore(Protocol):
    """Block documents (`stratoflow.blocks`): non-secret fields in `BlockDocument`,
    secret fields apart (`BlockSecrets`), never in the document's store, a log or an
    error message. Names are checked by the caller."""

    def read(self, block_type_slug: str, name: str) -> BlockDocument | None: ...

    def read_secrets(self, document: BlockDocument, *, pool: str | None) -> BlockSecrets:
        """The values of `document`'s secret fields (`pool`: this run's work pool, read
        first); raises BlockSecretsUnavailable."""

    def write(
        self, document: BlockDocument, secrets: BlockSecrets, *, overwrite: bool
    ) -> BlockDocument:
        """Create the block, or replace it when `overwrite` (keeping its id and creation
        time); raises BlockAlreadyExists, BlockSaveDenied."""

    def delete(self, block_type_slug: str, name: str) -> bool:
        """Whether there was a block to delete (its secrets go with it)."""

    def list_blocks(
        self, *, block_type_slug: str | None = None, limit: int | None = None
    ) -> list[BlockDocument]:
        """By type slug and name."""
