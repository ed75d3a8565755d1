"""What a flow run's page shows, computed from the run, its task runs and its log lines:
the state timeline, the task-run Gantt chart's data, the result's description (never
loaded) and the log tail's cursor. Pure functions of their inputs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stratoflow.exceptions import StratoflowError
from stratoflow.models import FlowRun, LogEntry, TaskRun
from stratoflow.result_signing import signer_of
from stratoflow.results import ResultRecord
from stratoflow.states import State

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
JSON_PEEK_BYTES = 65536
"""A JSON result up to this size is parsed to name its JSON type (parsing runs no code)."""


@dataclass(frozen=True)
class Step:
    """One state of the run's history, with how long the run stayed in it."""

    state: State
    lasted: float | None
    """Seconds until the next state (None for the current one)."""


def timeline(run: FlowRun) -> list[Step]:
    states = [*run.state_history, *([run.state] if run.state else [])]
    steps = []
    for index, state in enumerate(states):
        following = states[index + 1] if index + 1 < len(states) else None
        lasted = (
            (following.timestamp - state.timestamp).total_seconds()
            if following is not None
            else None
        )
        steps.append(Step(state, lasted))
    return steps


@dataclass(frozen=True)
class ResultInfo:
    """A result as the UI shows it: what, how big, where; never its value."""

    serializer: str
    size: int | None
    location: str
    json_type: str | None = None
    signed_by: str | None = None
    problem: str | None = None


def describe_result(run: FlowRun | TaskRun) -> ResultInfo | None:
    """The run's persisted result, without loading it (a pickle would run code chosen by
    whoever wrote it: any worker of the run's pool). None when it has no stored result."""
    state = run.state
    record: ResultRecord | None = (state.result_record if state else None) or run.result_record
    if record is None:
        return None
    try:
        size = record.size()
        json_type = _json_type(record) if record.serializer == "json" else None
    except (StratoflowError, ValueError, OSError) as exc:
        return ResultInfo(record.serializer or "unknown", None, record.uri, problem=str(exc))
    return ResultInfo(
        serializer=record.serializer,
        size=size,
        location=record.uri,
        json_type=json_type,
        signed_by=signer_of(record.signature),
    )


def _json_type(record: ResultRecord) -> str | None:
    if record.size() > JSON_PEEK_BYTES:
        return None
    value = json.loads(record.raw_bytes())
    return {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        type(None): "null",
    }.get(type(value))


def _ms(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment is not None else None


def gantt(run: FlowRun, task_runs: Sequence[TaskRun], now: datetime) -> dict[str, Any]:
    """The task-run chart's data (JSON for static/app.js): one bar per task run from its
    start to its end (to now while it runs), in ms from the run's start; its upstream task
    runs (the engine's `task_inputs`) by id and name, and its state."""
    names = {task.id: task.name for task in task_runs}
    started = [t.start_time for t in task_runs if t.start_time is not None]
    origin = run.start_time or (min(started) if started else None) or run.created or now
    bars = []
    for task in task_runs:
        if task.start_time is None:
            continue
        end = task.end_time or (now if task.state is None or not task.state.is_final() else None)
        end = end or task.start_time
        bars.append(
            {
                "id": task.id,
                "name": task.name,
                "start": (_ms(task.start_time) or 0) - (_ms(origin) or 0),
                "end": (_ms(end) or 0) - (_ms(origin) or 0),
                "state_type": task.state.type.value if task.state else None,
                "state_name": task.state.name if task.state else None,
                "upstream": [
                    {"id": upstream, "name": names.get(upstream, upstream)}
                    for upstream in sorted(task.upstream_task_run_ids)
                ],
            }
        )
    return {"origin": origin.astimezone(UTC).isoformat(), "bars": bars}


def level_number(name: str | None) -> int:
    """A level name's number; an unknown or missing name is DEBUG (everything)."""
    chosen = (name or "DEBUG").upper()
    return logging.getLevelNamesMapping().get(chosen, logging.DEBUG)


@dataclass(frozen=True)
class LogCursor:
    """Where a live tail is: the last line's time (ms) and how many lines it has shown
    at exactly that time (CloudWatch reads from a time, so lines of the same millisecond
    come again and are skipped by count)."""

    timestamp_ms: int
    seen_at_timestamp: int

    def as_text(self) -> str:
        return f"{self.timestamp_ms}.{self.seen_at_timestamp}"

    @classmethod
    def parse(cls, text: str | None) -> LogCursor | None:
        if not text:
            return None
        stamp, _, seen = text.partition(".")
        if not (stamp.isdigit() and seen.isdigit()) or len(stamp) > 16:
            return None
        return cls(int(stamp), int(seen))

    @property
    def since(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)


def after_cursor(entries: Iterable[LogEntry], cursor: LogCursor | None) -> list[LogEntry]:
    """The lines read from the cursor's time on, without those already shown."""
    fresh = []
    skip = cursor.seen_at_timestamp if cursor is not None else 0
    for entry in entries:
        stamp = _ms(entry.timestamp) or 0
        if cursor is not None and stamp < cursor.timestamp_ms:
            continue
        if cursor is not None and stamp == cursor.timestamp_ms and skip > 0:
            skip -= 1
            continue
        fresh.append(entry)
    return fresh


def advance(cursor: LogCursor | None, shown: Sequence[LogEntry]) -> LogCursor | None:
    """The cursor after `shown` (every line read, before the level filter)."""
    if not shown:
        return cursor
    last = _ms(shown[-1].timestamp) or 0
    same = sum(1 for entry in shown if (_ms(entry.timestamp) or 0) == last)
    if cursor is not None and cursor.timestamp_ms == last:
        same += cursor.seen_at_timestamp
    return LogCursor(last, same)
