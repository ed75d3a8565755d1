"""`strato flow-run ...`."""

from __future__ import annotations

import typer

from stratoflow.cli.common import err, out

flow_run_app = typer.Typer(help="Run and inspect flow runs.", no_args_is_help=True)

EXIT_COMPLETED = 0
EXIT_NOT_COMPLETED = 1
EXIT_NOT_RUNNABLE = 3


@flow_run_app.command("execute")
def execute(flow_run_id: str) -> None:
    """Run a claimed flow run of a deployment in this process (what every worker runs).

    Exit codes: 0 completed (or handed back for a retry), 1 ended in another state,
    3 nothing to do (unknown, already final, or claimed by another worker).
    """
    from stratoflow.cli.common import one_line_errors
    from stratoflow.states import StateType
    from stratoflow.workers.execute import NotRunnable, execute_flow_run

    try:
        with one_line_errors():
            state = execute_flow_run(flow_run_id)
    except NotRunnable as exc:
        err.print(f"Nothing to do: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_NOT_RUNNABLE) from None
    out.print(f"Flow run {flow_run_id} finished in {state.name}", highlight=False)
    if state.type not in (StateType.COMPLETED, StateType.SCHEDULED):
        raise typer.Exit(EXIT_NOT_COMPLETED)


@flow_run_app.command("retry")
def retry(flow_run_id: str) -> None:
    """Run a finished run of a deployment again, as its next attempt."""
    from stratoflow.cli.common import one_line_errors
    from stratoflow.deployments.runs import retry_flow_run

    with one_line_errors():
        run = retry_flow_run(flow_run_id)
    out.print(f"Flow run {run.name} ({run.id}) is {run.state!r} and queued again.")
