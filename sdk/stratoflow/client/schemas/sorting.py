"""`prefect.client.schemas.sorting` under its Prefect path: the orders the client's
`read_*` methods take (`sort=FlowRunSort.END_TIME_DESC`), as enums of Prefect's names.

stratoflow sorts the matches in this process. Objects without the value sorted on (a run
that has not started, for START_TIME_*) come last, in either direction.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from stratoflow.models import FlowRun, TaskRun

__all__ = ["ArtifactSort", "DeploymentSort", "FlowRunSort", "LogSort", "TaskRunSort", "sort"]

T = TypeVar("T")


class FlowRunSort(enum.StrEnum):
    ID_DESC = "ID_DESC"
    START_TIME_ASC = "START_TIME_ASC"
    START_TIME_DESC = "START_TIME_DESC"
    EXPECTED_START_TIME_ASC = "EXPECTED_START_TIME_ASC"
    EXPECTED_START_TIME_DESC = "EXPECTED_START_TIME_DESC"
    NAME_ASC = "NAME_ASC"
    NAME_DESC = "NAME_DESC"
    NEXT_SCHEDULED_START_TIME_ASC = "NEXT_SCHEDULED_START_TIME_ASC"
    END_TIME_DESC = "END_TIME_DESC"


class TaskRunSort(enum.StrEnum):
    """A task run has no expected start here: EXPECTED_* and NEXT_SCHEDULED_* sort by
    its start time, else its creation time."""

    ID_DESC = "ID_DESC"
    EXPECTED_START_TIME_ASC = "EXPECTED_START_TIME_ASC"
    EXPECTED_START_TIME_DESC = "EXPECTED_START_TIME_DESC"
    NAME_ASC = "NAME_ASC"
    NAME_DESC = "NAME_DESC"
    NEXT_SCHEDULED_START_TIME_ASC = "NEXT_SCHEDULED_START_TIME_ASC"
    END_TIME_DESC = "END_TIME_DESC"


class LogSort(enum.StrEnum):
    TIMESTAMP_ASC = "TIMESTAMP_ASC"
    TIMESTAMP_DESC = "TIMESTAMP_DESC"


class DeploymentSort(enum.StrEnum):
    CREATED_DESC = "CREATED_DESC"
    UPDATED_DESC = "UPDATED_DESC"
    NAME_ASC = "NAME_ASC"
    NAME_DESC = "NAME_DESC"
    CONCURRENCY_LIMIT_ASC = "CONCURRENCY_LIMIT_ASC"
    CONCURRENCY_LIMIT_DESC = "CONCURRENCY_LIMIT_DESC"


class ArtifactSort(enum.StrEnum):
    CREATED_DESC = "CREATED_DESC"
    UPDATED_DESC = "UPDATED_DESC"
    ID_DESC = "ID_DESC"
    KEY_DESC = "KEY_DESC"
    KEY_ASC = "KEY_ASC"


def _started(run: FlowRun) -> datetime | None:
    # Prefect sorts on the start time, else the expected start (a run not started yet).
    return run.start_time or run.expected_start_time


def _task_started(run: TaskRun) -> datetime | None:
    return run.start_time or run.created


_Key = Callable[[Any], Any]
# Per kind: members of different kinds with one name are equal strings (StrEnum).
_ORDERS: dict[type[enum.StrEnum], dict[str, tuple[_Key, bool]]] = {
    FlowRunSort: {
        FlowRunSort.ID_DESC: (lambda r: r.id, True),
        FlowRunSort.START_TIME_ASC: (_started, False),
        FlowRunSort.START_TIME_DESC: (_started, True),
        FlowRunSort.EXPECTED_START_TIME_ASC: (lambda r: r.expected_start_time, False),
        FlowRunSort.EXPECTED_START_TIME_DESC: (lambda r: r.expected_start_time, True),
        FlowRunSort.NAME_ASC: (lambda r: r.name, False),
        FlowRunSort.NAME_DESC: (lambda r: r.name, True),
        FlowRunSort.NEXT_SCHEDULED_START_TIME_ASC: (
            lambda r: r.expected_start_time if r.state and r.state.is_scheduled() else None,
            False,
        ),
        FlowRunSort.END_TIME_DESC: (lambda r: r.end_time, True),
    },
    TaskRunSort: {
        TaskRunSort.ID_DESC: (lambda r: r.id, True),
        TaskRunSort.EXPECTED_START_TIME_ASC: (_task_started, False),
        TaskRunSort.EXPECTED_START_TIME_DESC: (_task_started, True),
        TaskRunSort.NAME_ASC: (lambda r: r.name, False),
        TaskRunSort.NAME_DESC: (lambda r: r.name, True),
        TaskRunSort.NEXT_SCHEDULED_START_TIME_ASC: (_task_started, False),
        TaskRunSort.END_TIME_DESC: (lambda r: r.end_time, True),
    },
    LogSort: {
        LogSort.TIMESTAMP_ASC: (lambda e: e.timestamp, False),
        LogSort.TIMESTAMP_DESC: (lambda e: e.timestamp, True),
    },
    DeploymentSort: {
        DeploymentSort.CREATED_DESC: (lambda d: d.created, True),
        DeploymentSort.UPDATED_DESC: (lambda d: d.updated, True),
        DeploymentSort.NAME_ASC: (lambda d: d.name, False),
        DeploymentSort.NAME_DESC: (lambda d: d.name, True),
        DeploymentSort.CONCURRENCY_LIMIT_ASC: (lambda d: d.concurrency_limit, False),
        DeploymentSort.CONCURRENCY_LIMIT_DESC: (lambda d: d.concurrency_limit, True),
    },
    ArtifactSort: {
        ArtifactSort.CREATED_DESC: (lambda a: a.created, True),
        ArtifactSort.UPDATED_DESC: (lambda a: a.updated, True),
        ArtifactSort.ID_DESC: (lambda a: str(a.id), True),
        ArtifactSort.KEY_DESC: (lambda a: a.key, True),
        ArtifactSort.KEY_ASC: (lambda a: a.key, False),
    },
}


def sort(items: Sequence[T], order: enum.StrEnum | str, kind: type[enum.StrEnum]) -> list[T]:
    """`items` in `order` (a member of `kind`, or its name); stable for ties."""
    try:
        chosen = kind(order)
    except ValueError:
        raise ValueError(
            f"{order!r} is not a {kind.__name__}; use one of {', '.join(kind)}."
        ) from None
    key, descending = _ORDERS[kind][chosen]
    present = [item for item in items if key(item) is not None]
    missing = [item for item in items if key(item) is None]
    return sorted(present, key=key, reverse=descending) + missing
