"""What every `strato` command shares: consoles, errors, parameter parsing."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import typer
from rich.console import Console

from stratoflow.exceptions import StratoflowError

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]Error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def parse_params(
    pairs: list[str], params_json: str | None, *, option: str = "--param"
) -> dict[str, Any]:
    """`--param k=v` (v as JSON when it parses, else text) over `--params '{...}'` (the
    same for another `option`, such as `--input`/`--input-json`)."""
    json_option = "--params" if option == "--param" else f"{option}-json"
    parameters: dict[str, Any] = {}
    if params_json:
        try:
            loaded = json.loads(params_json)
        except json.JSONDecodeError as exc:
            raise fail(f"{json_option} is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise fail(
                f"{json_option} must be a JSON object, e.g. {json_option} '{{\"rows\": 10}}'"
            )
        parameters.update(loaded)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise fail(f"{option} {pair!r} must look like name=value, e.g. {option} rows=10")
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


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str | None, *, now: datetime | None = None) -> datetime | None:
    """`--since 30m`, `2h`, `7d` or an ISO time (UTC when it has no offset)."""
    if text is None:
        return None
    now = now or datetime.now(UTC)
    raw = text.strip()
    unit = raw[-1:].lower()
    if unit in _UNITS and raw[:-1].isdigit():
        return now - timedelta(seconds=int(raw[:-1]) * _UNITS[unit])
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise fail(
            f"--since {text!r} is neither a duration (30m, 2h, 7d) nor an ISO time "
            "(2026-11-21T10:00)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
