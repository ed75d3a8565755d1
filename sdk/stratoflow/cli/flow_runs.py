"""`strato flow-run ...`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from stratoflow.cli.common import err, fail, one_line_errors, out, parse_since, print_json
from stratoflow.cli.render import duration, render_flow_run, styled_state
from stratoflow.cli.results import LoadResultOption, shown_result
from stratoflow.models import FlowRun, LogEntry

flow_run_app = typer.Typer(help="Run and inspect flow runs.", no_args_is_help=True)

EXIT_COMPLETED = 0
EXIT_NOT_COMPLETED = 1
EXIT_NOT_RUNNABLE = 3


@flow_run_app.command("execute")
def execute(
    flow_run_id: str,
    from_queue: Annotated[
        str | None,
        typer.Option(
            "--from-queue",
            help="The SQS work queue whose message started this (the ECS dispatcher sets "
            "it): a run of another pool or queue is refused, exit code 3.",
        ),
    ] = None,
    handoff: Annotated[
        str | None,
        typer.Option(
            "--handoff",
            hidden=True,
            help="The run and its deployment as the poller that started this process "
            "claimed and read them (JSON): not read again.",
        ),
    ] = None,
) -> None:
    """Run a claimed flow run of a deployment in this process (what every worker runs).

    Exit codes: 0 completed (or handed back for a retry, a sleep, suspended), 1 ended in
    another state,
    3 nothing to do (unknown, already final, claimed by another worker, or not the
    `--from-queue` queue's run). With `-` as the id, the process gets ready first and
    then reads the id from stdin (what the poller's warm processes do), and the handoff
    from the next line.
    """
    import sys

    from stratoflow.platform import get_platform
    from stratoflow.states import StateType
    from stratoflow.workers.execute import NotRunnable, execute_flow_run
    from stratoflow.workers.warm import FROM_STDIN

    if flow_run_id == FROM_STDIN:
        with one_line_errors():
            get_platform()  # clients and stores built before the run arrives
        flow_run_id = sys.stdin.readline().strip()
        if not flow_run_id:
            raise typer.Exit(EXIT_NOT_RUNNABLE)  # the worker stopped before using us
        handoff = sys.stdin.readline().strip() or None
    # NotRunnable is a StratoflowError: caught before one_line_errors would make it exit 2.
    with one_line_errors():
        try:
            state = execute_flow_run(flow_run_id, queue_name=from_queue, handoff=handoff)
        except NotRunnable as exc:
            err.print(f"Nothing to do: {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_NOT_RUNNABLE) from None
    out.print(f"Flow run {flow_run_id} finished in {state.name}", highlight=False)
    # Handed back (a retry, a sleep, a hand-back) or suspended: it continues later.
    if state.type not in (StateType.COMPLETED, StateType.SCHEDULED, StateType.PAUSED):
        raise typer.Exit(EXIT_NOT_COMPLETED)


@flow_run_app.command("retry")
def retry(
    flow_run_id: str,
    from_scratch: Annotated[
        bool,
        typer.Option(
            "--from-scratch",
            help="Run every task again: do not replay the task runs earlier attempts "
            "completed (and forget their sleeps and inputs).",
        ),
    ] = False,
) -> None:
    """Run a finished run of a deployment again, as its next attempt (replaying the task
    runs earlier attempts completed, unless --from-scratch)."""
    from stratoflow.deployments.runs import retry_flow_run

    with one_line_errors():
        run = retry_flow_run(flow_run_id, from_scratch=from_scratch)
    out.print(f"Flow run {run.name} ({run.id}) is {run.state!r} and queued again.")


@flow_run_app.command("resume")
def resume(
    flow_run_id: str,
    field: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", help="A field of the input it waits for, as name=value."),
    ] = None,
    input_json: Annotated[
        str | None, typer.Option("--input-json", help="The whole input as a JSON object.")
    ] = None,
) -> None:
    """Resume a paused or suspended flow run, with the input it waits for (checked
    against its schema: a bad input is refused and the run stays paused)."""
    from stratoflow.cli.common import parse_params
    from stratoflow.flow_runs import resume_flow_run

    given = parse_params(field or [], input_json, option="--input")
    with one_line_errors():
        run = resume_flow_run(flow_run_id, run_input=given if field or input_json else None)
    out.print(f"Flow run {run.name} ({run.id}) is {run.state!r}.", highlight=False)


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def run_row(run: FlowRun) -> dict[str, Any]:
    state = run.state
    return {
        "id": run.id,
        "name": run.name,
        "flow": run.flow_name,
        "deployment": run.deployment_name,
        "state": state.name if state else None,
        "state_type": state.type.value if state else None,
        "message": state.message if state else None,
        "created": run.created.isoformat() if run.created else None,
        "start_time": run.start_time.isoformat() if run.start_time else None,
        "end_time": run.end_time.isoformat() if run.end_time else None,
        "run_count": run.run_count,
        "tags": list(run.tags),
    }


@flow_run_app.command("ls")
def list_runs(
    state: Annotated[
        str | None, typer.Option(help="A state type or name, e.g. failed, Late.")
    ] = None,
    deployment: Annotated[str | None, typer.Option(help="Only this deployment's runs.")] = None,
    since: Annotated[str | None, typer.Option(help="30m, 2h, 7d or an ISO time.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: JsonOption = False,
) -> None:
    """List flow runs, newest first."""
    from stratoflow.runs import query_flow_runs

    with one_line_errors():
        found = query_flow_runs(
            state=state, deployment=deployment, since=parse_since(since), limit=limit
        )
    if as_json:
        print_json([run_row(r) for r in found])
        return
    table = Table(title="Flow runs")
    for column in ("name", "flow", "deployment", "state", "created", "duration", "id"):
        table.add_column(column)
    for run in found:
        table.add_row(
            run.name,
            run.flow_name,
            run.deployment_name or "-",
            styled_state(run.state),
            f"{run.created:%Y-%m-%d %H:%M:%S}" if run.created else "-",
            duration(run.start_time, run.end_time),
            run.id,
        )
    out.print(table)


@flow_run_app.command("inspect")
def inspect_run(
    flow_run_id: str, as_json: JsonOption = False, load_result: LoadResultOption = False
) -> None:
    """Show a flow run: state, history, parameters, result and task runs.

    A cloudpickle result is shown by its size and place unless --load-result is given.
    """
    from stratoflow import runs

    with one_line_errors():
        run = runs.read_flow_run(flow_run_id)
        task_runs = runs.read_task_runs(flow_run_id)
    result = shown_result(run, load_result)
    document = {
        **run_row(run),
        "parameters": run.parameters,
        "history": [
            {
                "name": s.name,
                "type": s.type.value,
                "timestamp": s.timestamp.isoformat(),
                "message": s.message,
            }
            for s in [*run.state_history, *([run.state] if run.state else [])]
        ],
        "result": result,
        "task_runs": [
            {
                "id": t.id,
                "name": t.name,
                "state": t.state.name if t.state else None,
                "run_count": t.run_count,
                "attempt": t.flow_run_attempt,
            }
            for t in task_runs
        ],
        "waiting_for": waiting_for(run),
    }
    if as_json:
        print_json(document)
        return
    render_flow_run(out, run, task_runs, result=result)
    waiting = document.get("waiting_for")
    if waiting is not None:
        out.print(f"Waiting: {waiting}", highlight=False, soft_wrap=True)
    history = " → ".join(str(h["name"]) for h in document["history"])
    out.print(f"History: {history}", highlight=False, soft_wrap=True)
    out.print(f"Parameters: {run.parameters}", highlight=False, soft_wrap=True)


def waiting_for(run: FlowRun) -> dict[str, Any] | None:
    """What a paused run waits for: its pause, its timeout and its input's schema."""
    from stratoflow.flow_runs import paused_state_schema

    state = run.state
    if state is None or not state.is_paused():
        return None
    return {
        "pause_key": state.details.get("pause_key"),
        "timeout": state.details.get("pause_timeout"),
        "holds_compute": not state.details.get("pause_reschedule", False),
        "input_schema": paused_state_schema(state, run.id),
    }


@flow_run_app.command("cancel")
def cancel(flow_run_id: str) -> None:
    """Cancel a flow run: it becomes Cancelling, and its worker stops it."""
    from stratoflow import runs

    with one_line_errors():
        state = runs.cancel_flow_run(flow_run_id)
    out.print(f"Flow run {flow_run_id} is {state.name}.")


@flow_run_app.command("logs")
def logs(
    flow_run_id: str,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    level: Annotated[str, typer.Option(help="Lowest level shown.")] = "DEBUG",
    task: Annotated[str | None, typer.Option(help="Only this task run (name or id).")] = None,
    as_json: JsonOption = False,
    poll_seconds: Annotated[float, typer.Option(hidden=True)] = 2.0,
) -> None:
    """Print a flow run's log lines (from CloudWatch Logs with the AWS backend)."""
    import logging
    import time

    from stratoflow import runs

    threshold = logging.getLevelName(level.upper())
    if not isinstance(threshold, int):
        raise fail(f"--level {level!r} is not a level: DEBUG, INFO, WARNING, ERROR, CRITICAL")
    seen: set[tuple[str, str, str | None]] = set()
    with one_line_errors():
        run = runs.read_flow_run(flow_run_id)
        task_run_id = _task_run_id(flow_run_id, task) if task else None
        while True:
            for entry in runs.read_logs(flow_run_id, task_run_id=task_run_id):
                key = (entry.timestamp.isoformat(), entry.message, entry.task_run_id)
                if key in seen or entry.level < threshold:
                    continue
                seen.add(key)
                _print_entry(entry, as_json)
            run = runs.read_flow_run(flow_run_id)
            if not follow or (run.state is not None and run.state.is_final()):
                break
            time.sleep(poll_seconds)


_LEVEL_STYLES = {
    "DEBUG": "dim",
    "INFO": "",
    "WARNING": "yellow",
    "ERROR": "red",
    "CRITICAL": "bold red",
}


def _print_entry(entry: LogEntry, as_json: bool) -> None:
    if as_json:
        out.print_json(
            data={
                "timestamp": entry.timestamp.isoformat(),
                "level": entry.level_name,
                "message": entry.message,
                "flow_run_id": entry.flow_run_id,
                "task_run_id": entry.task_run_id,
                "task_run_name": entry.task_run_name,
            },
            indent=None,
        )
        return
    where = entry.task_run_name or entry.flow_run_name or ""
    style = _LEVEL_STYLES.get(entry.level_name, "")
    line = f"{entry.timestamp:%H:%M:%S.%f}"[:-3] + f" {entry.level_name:<7} {where}: "
    text = Text(line)
    text.append(entry.message, style=style)
    out.print(text, soft_wrap=True)


def _task_run_id(flow_run_id: str, task: str) -> str:
    from stratoflow import runs
    from stratoflow.exceptions import ObjectNotFound

    for task_run in runs.read_task_runs(flow_run_id):
        if task in (task_run.id, task_run.name):
            return task_run.id
    raise ObjectNotFound(f"Flow run {flow_run_id} has no task run {task!r}.")
