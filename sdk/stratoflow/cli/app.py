"""`strato`: Prefect-like nouns and verbs for running and inspecting flows."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from stratoflow.cli.render import flow_run_document, render_flow_run
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
out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]Error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def parse_params(pairs: list[str], params_json: str | None) -> dict[str, Any]:
    """`--param k=v` (v as JSON when it parses, else text) over `--params '{...}'`."""
    parameters: dict[str, Any] = {}
    if params_json:
        try:
            loaded = json.loads(params_json)
        except json.JSONDecodeError as exc:
            raise fail(f"--params is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise fail("--params must be a JSON object, e.g. --params '{\"rows\": 10}'")
        parameters.update(loaded)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise fail(f"--param {pair!r} must look like name=value, e.g. --param rows=10")
        try:
            parameters[key] = json.loads(raw)
        except json.JSONDecodeError:
            parameters[key] = raw
    return parameters


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
    if as_json:
        out.print_json(data=flow_run_document(flow_run, task_runs, logs))
    else:
        render_flow_run(out, flow_run, task_runs)  # log lines were streamed to stderr
    if not state.is_completed():
        raise typer.Exit(1)
