"""How the CLI shows a run's result: described, and loaded only when asked.

A cloudpickle result is code as much as data: loading it runs whatever its writer (any
worker of the run's pool, so any flow's code) put in it, on the machine that loads it.
So commands show it as `<cloudpickle, N bytes>` and where it is stored, and load it only
with `--load-result`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stratoflow.cli.render import NotLoaded, describe_result
from stratoflow.exceptions import StratoflowError
from stratoflow.models import FlowRun, TaskRun

LoadResultOption = Annotated[
    bool,
    typer.Option(
        "--load-result",
        help="Load a cloudpickle result to show its value. This runs code from the result "
        "on this machine: use it only for runs whose workers you trust.",
    ),
]


def shown_result(run: FlowRun | TaskRun, load: bool) -> Any:
    """The run's result as a command shows it: described (see describe_result), or its
    value when `load` is set (the user's explicit request, through the SDK's reader)."""
    from stratoflow import runs  # as in every command: the CLI starts without the engine

    if not load:
        return describe_result(run.state, run.result_record)
    if run.state is None or not run.state.is_completed():
        return None
    try:
        return runs.read_result(run)
    except StratoflowError as exc:
        return NotLoaded(f"<not available: {exc}>")
