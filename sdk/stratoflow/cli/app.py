"""`strato`: Prefect-like nouns and verbs for running and inspecting flows."""

from __future__ import annotations

from typing import Annotated

import typer

from stratoflow.cli.artifacts import artifact_app
from stratoflow.cli.automations import automation_app
from stratoflow.cli.blocks import block_app
from stratoflow.cli.common import fail, out, parse_params
from stratoflow.cli.concurrency_limits import concurrency_limit_app
from stratoflow.cli.config import config_app
from stratoflow.cli.deployments import deploy, deployment_app
from stratoflow.cli.dev import dev
from stratoflow.cli.events import events_app
from stratoflow.cli.flow_runs import flow_run_app
from stratoflow.cli.render import describe_result, flow_run_document, render_flow_run
from stratoflow.cli.task_runs import task_run_app
from stratoflow.cli.task_worker import task_worker_app
from stratoflow.cli.variables import variable_app
from stratoflow.cli.work_pools import work_pool_app, work_queue_app
from stratoflow.cli.worker import worker_app
from stratoflow.engine.flow_engine import call_flow
from stratoflow.entrypoints import EntrypointError, load_flow
from stratoflow.exceptions import StratoflowError
from stratoflow.states import State

app = typer.Typer(
    name="strato",
    help="stratoflow: serverless workflow orchestration for Python.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("deploy")(deploy)
app.command("dev")(dev)
app.add_typer(deployment_app, name="deployment")
app.add_typer(flow_run_app, name="flow-run")
app.add_typer(automation_app, name="automation")
app.add_typer(task_run_app, name="task-run")
app.add_typer(config_app, name="config")
app.add_typer(work_pool_app, name="work-pool")
app.add_typer(work_queue_app, name="work-queue")
app.add_typer(concurrency_limit_app, name="concurrency-limit")
app.add_typer(events_app, name="events")
app.add_typer(worker_app, name="worker")
app.add_typer(task_worker_app, name="task-worker")
app.add_typer(artifact_app, name="artifact")
app.add_typer(variable_app, name="variable")
app.add_typer(block_app, name="block")


@app.command()
def version() -> None:
    """Print the stratoflow version."""
    from stratoflow import __version__

    out.print(__version__)


@app.command()
def run(
    entrypoint: Annotated[str, typer.Argument(help="path/to/file.py:flow_function")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="A parameter as name=value.")
    ] = None,
    params: Annotated[str | None, typer.Option(help="Parameters as a JSON object.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
) -> None:
    """Run a flow in this process and show its state, result, task runs and logs.

    Exits 0 when the run completes, 1 when it ends in any other state.
    """
    from stratoflow import runs

    parameters = parse_params(param or [], params)
    try:
        flow = load_flow(entrypoint)
    except EntrypointError as exc:
        raise fail(str(exc)) from None
    try:
        state: State = call_flow(flow, (), parameters, return_state=True)
    except StratoflowError as exc:
        raise fail(str(exc)) from None
    flow_run = runs.read_flow_run(state.details["flow_run_id"])
    task_runs = runs.read_task_runs(flow_run.id)
    logs = runs.read_logs(flow_run.id)
    # The value this process computed (no stored pickle is loaded to show it).
    result = describe_result(state, flow_run.result_record)
    if as_json:
        out.print_json(data=flow_run_document(flow_run, task_runs, logs, result=result))
    else:
        # log lines were streamed to stderr
        render_flow_run(out, flow_run, task_runs, result=result)
    if not state.is_completed():
        raise typer.Exit(1)
