"""Rich rendering of runs, shared by `strato run` and the demo."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from stratoflow.models import FlowRun, LogEntry, TaskRun
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


def render_flow_run(
    console: Console, run: FlowRun, task_runs: list[TaskRun], logs: list[LogEntry] | None = None
) -> None:
    """The run's final state, result and task runs; then its stored log lines, if given."""
    state = run.state
    console.print(
        f"Flow run [bold]{run.name}[/] ({run.flow_name}) finished in {styled_state(state)}"
        + (f": {state.message}" if state and state.message else ""),
        soft_wrap=True,
    )
    if state is not None and state.type is StateType.COMPLETED:
        console.print(f"Result: {state.result()!r}")
    if task_runs:
        table = Table(title=f"Task runs of {run.name}", title_justify="left")
        for column in ("task run", "state", "attempts", "duration", "upstream"):
            table.add_column(column)
        for task_run in task_runs:
            table.add_row(
                task_run.name,
                styled_state(task_run.state),
                str(task_run.run_count),
                duration(task_run.start_time, task_run.end_time),
                str(len(task_run.upstream_task_run_ids)),
            )
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
    run: FlowRun, task_runs: list[TaskRun], logs: list[LogEntry]
) -> dict[str, Any]:
    """A JSON-ready description of a finished flow run (for `--json`)."""

    def state_doc(state: State | None) -> dict[str, Any] | None:
        if state is None:
            return None
        return {
            "type": state.type.value,
            "name": state.name,
            "message": state.message,
            "timestamp": state.timestamp.isoformat(),
        }

    result: Any = None
    if run.state is not None and run.state.type is StateType.COMPLETED:
        result = run.state.result()
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
