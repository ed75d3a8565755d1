"""Rich rendering of runs, shared by `strato run` and the demo."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from stratoflow.exceptions import StratoflowError
from stratoflow.models import FlowRun, LogEntry, TaskRun
from stratoflow.result_signing import signer_of
from stratoflow.results import ResultRecord
from stratoflow.states import State, StateType

STATE_STYLES = {
    StateType.COMPLETED: "green",
    StateType.FAILED: "red",
    StateType.CRASHED: "bold red",
    StateType.CANCELLED: "yellow",
    StateType.CANCELLING: "yellow",
    StateType.RUNNING: "cyan",
    StateType.PENDING: "blue",
    StateType.SCHEDULED: "blue",
    StateType.PAUSED: "magenta",
}


def styled_state(state: State | None) -> str:
    if state is None:
        return "-"
    return f"[{STATE_STYLES.get(state.type, 'white')}]{state.name}[/]"


def duration(start: Any, end: Any) -> str:
    if start is None or end is None:
        return "-"
    return f"{(end - start).total_seconds():.3f}s"


class NotLoaded(str):
    """A result shown by what it is instead of its value (prints without quotes)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


_DESCRIBE: Any = object()
"""render_flow_run's default: describe the run's result (never load a pickle)."""


def describe_result(state: State | None, record: ResultRecord | None = None) -> Any:
    """A completed run's result for showing, without running anything: the value when it
    is in this process's memory or stored as JSON; for a pickle, its size and place.

    Loading a pickle runs code chosen by whoever wrote it (any worker of the run's pool),
    so the CLI loads one only when asked (`--load-result`), never here.
    """
    if state is None or state.type is not StateType.COMPLETED:
        return None
    if state.has_data:
        return state.data
    record = state.result_record or record
    if record is None:
        return None
    try:
        if record.serializer == "json":
            return json.loads(record.raw_bytes())  # JSON decoding runs no code
        place = "inline" if record.inline is not None else f"at {record.uri}"
        if record.verifier is None:  # a local store's record: nothing to check
            return NotLoaded(
                f"<{record.serializer}, {record.size()} bytes> {place}; "
                "not loaded (--load-result loads it)"
            )
        signer = signer_of(record.signature)
        signed = (
            f"signed as {signer!r} (checked by --load-result, which loads it)"
            if signer
            else "unsigned (--load-result refuses it)"
        )
        return NotLoaded(f"<{record.serializer}, {record.size()} bytes> {place}; {signed}")
    except (StratoflowError, ValueError) as exc:
        return NotLoaded(f"<not available: {exc}>")


def render_flow_run(
    console: Console,
    run: FlowRun,
    task_runs: list[TaskRun],
    logs: list[LogEntry] | None = None,
    *,
    result: Any = _DESCRIBE,
) -> None:
    """The run's final state, result and task runs; then its stored log lines, if given.

    `result` is the value to show; by default the run's result as describe_result shows
    it (this module never unpickles).
    """
    state = run.state
    console.print(
        f"Flow run [bold]{run.name}[/] ({run.flow_name}) finished in {styled_state(state)}"
        + (f": {state.message}" if state and state.message else ""),
        soft_wrap=True,
    )
    if state is not None and state.type is StateType.COMPLETED:
        shown = describe_result(state, run.result_record) if result is _DESCRIBE else result
        console.print(f"Result: {shown!r}", markup=False, highlight=False, soft_wrap=True)
    if task_runs:
        table = Table(title=f"Task runs of {run.name}", title_justify="left")
        # A run with several attempts: which attempt ran each task run (later attempts
        # replayed the ones they did not run: docs/durability.md).
        by_attempt = run.run_count > 1
        columns = ("task run", "state", "attempts", "duration", "upstream")
        for column in (*columns, "flow attempt") if by_attempt else columns:
            table.add_column(column)
        for task_run in task_runs:
            cells = [
                task_run.name,
                styled_state(task_run.state),
                str(task_run.run_count),
                duration(task_run.start_time, task_run.end_time),
                str(len(task_run.upstream_task_run_ids)),
            ]
            if by_attempt:
                ran_in = task_run.flow_run_attempt
                cells.append("-" if ran_in is None else str(ran_in))
            table.add_row(*cells)
        console.print(table)
    if logs:
        console.print(f"[bold]Logs[/] ({len(logs)} lines):")
        for entry in logs:
            where = entry.task_run_name or entry.flow_run_name or ""
            first_line = entry.message.splitlines()[0] if entry.message else ""
            console.print(
                f"  {entry.timestamp:%H:%M:%S.%f}"[:-3]
                + f" {entry.level_name:<7} {where}: {first_line}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )


def flow_run_document(
    run: FlowRun, task_runs: list[TaskRun], logs: list[LogEntry], *, result: Any = _DESCRIBE
) -> dict[str, Any]:
    """A JSON-ready description of a finished flow run (for `--json`); `result` as for
    render_flow_run."""

    def state_doc(state: State | None) -> dict[str, Any] | None:
        if state is None:
            return None
        return {
            "type": state.type.value,
            "name": state.name,
            "message": state.message,
            "timestamp": state.timestamp.isoformat(),
        }

    if result is _DESCRIBE:
        result = describe_result(run.state, run.result_record)
    document: dict[str, Any] = json.loads(
        json.dumps(
            {
                "id": run.id,
                "name": run.name,
                "flow_name": run.flow_name,
                "parameters": run.parameters,
                "state": state_doc(run.state),
                "result": result,
                "task_runs": [
                    {
                        "id": t.id,
                        "name": t.name,
                        "state": state_doc(t.state),
                        "run_count": t.run_count,
                        "upstream": sorted(t.upstream_task_run_ids),
                    }
                    for t in task_runs
                ],
                "logs": [
                    {
                        "timestamp": e.timestamp.isoformat(),
                        "level": e.level_name,
                        "message": e.message,
                        "task_run_id": e.task_run_id,
                    }
                    for e in logs
                ],
            },
            default=repr,
        )
    )
    return document
