"""Calling a flow's or task's function: its value, or the state its failure ends in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stratoflow.engine.timeouts import call_with_timeout
from stratoflow.states import Failed, State, TimedOut


@dataclass(frozen=True, slots=True)
class Returned:
    value: Any


def call_user_code(
    call: Callable[[], Any],
    *,
    kind: str,
    run_name: str,
    timeout: float | None,
    timeout_error: type[TimeoutError],
) -> Returned | State:
    """`call()`, with `timeout` seconds at most. An exception becomes a Failed state and
    the timeout a TimedOut one (only BaseExceptions such as KeyboardInterrupt escape)."""
    try:
        if timeout is None:
            return Returned(call())
        return Returned(
            call_with_timeout(
                call,
                timeout,
                lambda: timeout_error(
                    f"{kind} run {run_name!r} exceeded its timeout of {timeout:g} seconds."
                ),
                thread_name=f"{kind.lower()}-{run_name}",
            )
        )
    except timeout_error as exc:
        return TimedOut(str(exc), data=exc)
    except Exception as exc:  # noqa: BLE001 - the exception becomes the Failed state
        return Failed(f"{kind} run encountered an exception {type(exc).__name__}: {exc}", data=exc)
