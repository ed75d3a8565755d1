"""What every `strato` command shares: consoles, errors, parameter parsing."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import typer
from rich.console import Console

from stratoflow.exceptions import StratoflowError

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


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn stratoflow's own errors (unknown names, bad input, configuration) into one
    line on stderr and exit code 2."""
    try:
        yield
    except StratoflowError as exc:
        raise fail(str(exc)) from None


def print_json(data: Any) -> None:
    out.print_json(data=json.loads(json.dumps(data, default=str)))
