"""The order in which runs of one state type are listed (`list_flow_runs_by_state`): the
one the late, orphan, pause and zombie passes of the scheduler's tick read them in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from stratoflow.models import FlowRun
from stratoflow.states import State, StateType


def state_sort_moment(run: FlowRun, state: State) -> datetime:
    """Scheduled runs by when they should start (the late and enqueue passes), paused runs
    by when their pause times out (the pass that fails them), other states by when they
    were entered. In UTC."""
    moment: Any = state.timestamp
    if state.type is StateType.SCHEDULED:
        moment = state.details.get("scheduled_time") or run.expected_start_time or moment
    elif state.type is StateType.PAUSED:
        moment = state.details.get("pause_timeout") or moment
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)  # type: ignore[no-any-return]


def in_window(moment: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or moment >= since) and (until is None or moment <= until)
