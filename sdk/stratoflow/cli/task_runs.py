"""`strato task-run ls|inspect|cancel`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from stratoflow.cli.common import one_line_errors, out, print_json
from stratoflow.cli.render import duration, styled_state
from stratoflow.cli.results import LoadResultOption, shown_result
from stratoflow.models import TaskRun

task_run_app = typer.Typer(help="Inspect and cancel task runs.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def task_row(run: TaskRun) -> dict[str, Any]:
    state = run.state
    return {
        "id": run.id,
        "name": run.name,
        "task": run.task_name,
        "flow_run_id": run.flow_run_id,
        "state": state.name if state else None,
        "state_type": state.type.value if state else None,
        "message": state.message if state else None,
        "run_count": run.run_count,
        "upstream": sorted(run.upstream_task_run_ids),
        "cache_key": run.cache_key,
        "tags": list(run.tags),
        "start_time": run.start_time.isoformat() if run.start_time else None,
        "end_time": run.end_time.isoformat() if run.end_time else None,
    }


@task_run_app.command("ls")
def list_task_runs(flow_run_id: str, as_json: JsonOption = False) -> None:
    """The task runs of a flow run, in the order they were created."""
    from stratoflow import runs

    with one_line_errors():
        runs.read_flow_run(flow_run_id)  # a clear error for an unknown id
        found = runs.read_task_runs(flow_run_id)
    if as_json:
        print_json([task_row(t) for t in found])
        return
    table = Table(title=f"Task runs of {flow_run_id}")
    for column in ("name", "state", "attempts", "duration", "upstream", "id"):
        table.add_column(column)
    for run in found:
        table.add_row(
            run.name,
            styled_state(run.state),
            str(run.run_count),
            duration(run.start_time, run.end_time),
            str(len(run.upstream_task_run_ids)),
            run.id,
        )
    out.print(table)


@task_run_app.command("inspect")
def inspect_task_run(
    task_run_id: str,
    flow_run: Annotated[
        str | None,
        typer.Option("--flow-run", help="Its flow run's id (none: a background task run)."),
    ] = None,
    as_json: JsonOption = False,
    load_result: LoadResultOption = False,
) -> None:
    """One task run: state, history, inputs and result.

    A task run of a flow needs --flow-run; a background task run (`.delay()`) does not.
    A cloudpickle result is shown by its size and place unless --load-result is given.
    """
    from stratoflow.context import get_services

    with one_line_errors():
        run = get_services().backend.read_task_run(task_run_id, flow_run_id=flow_run)
    document = {
        **task_row(run),
        "history": [s.name for s in [*run.state_history, *([run.state] if run.state else [])]],
        "task_inputs": run.task_inputs,
        "result": shown_result(run, load_result),
    }
    if as_json:
        print_json(document)
    else:
        out.print_json(data=document, default=str)


@task_run_app.command("cancel")
def cancel(task_run_id: str) -> None:
    """Cancel a background task run (`.delay()`): Cancelled at once while it waits for a
    task worker, else Cancelling until its worker stops it (then Cancelled)."""
    from stratoflow import runs

    with one_line_errors():
        state = runs.cancel_task_run(task_run_id)
    out.print(f"Task run {task_run_id} is {state.name}.")
