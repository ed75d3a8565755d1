"""Calling a flow's or task's function: its value, or the state its failure ends in.

`Body` is the effect the engines yield to run the function: a `def` function is called
(`call_user_code`, a thread enforces the timeout), an `async def` one is awaited
(`call_user_code_async`, the timeout cancels the coroutine)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stratoflow.engine.steps import Effect
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
                lambda: timeout_error(_timeout_message(kind, run_name, timeout)),
                thread_name=f"{kind.lower()}-{run_name}",
            )
        )
    except timeout_error as exc:
        return TimedOut(str(exc), data=exc)
    except Exception as exc:  # noqa: BLE001 - the exception becomes the Failed state
        return _failed(kind, exc)


async def call_user_code_async(
    call: Callable[[], Any],
    *,
    kind: str,
    run_name: str,
    timeout: float | None,
    timeout_error: type[TimeoutError],
) -> Returned | State:
    """Await `call()`, with `timeout` seconds at most: on expiry the coroutine is
    cancelled and the run is TimedOut. An exception becomes a Failed state; only
    BaseExceptions (asyncio.CancelledError from outside, KeyboardInterrupt) escape."""
    if timeout is None:
        # No deadline to arm: asyncio.timeout(None) would cost more than the rest of
        # the call (about 2.5 µs), and could not expire.
        try:
            value = call()
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:  # noqa: BLE001 - the exception becomes the Failed state
            return _failed(kind, exc)
        return Returned(value)
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            value = call()
            if inspect.isawaitable(value):
                value = await value
    except TimeoutError as exc:
        if not deadline.expired():  # the function's own TimeoutError: a failure
            return _failed(kind, exc)
        error = timeout_error(_timeout_message(kind, run_name, timeout))
        return TimedOut(str(error), data=error)
    except Exception as exc:  # noqa: BLE001 - the exception becomes the Failed state
        return _failed(kind, exc)
    return Returned(value)


def _timeout_message(kind: str, run_name: str, timeout: float | None) -> str:
    return f"{kind} run {run_name!r} exceeded its timeout of {timeout:g} seconds."


def _failed(kind: str, exc: Exception) -> State:
    return Failed(f"{kind} run encountered an exception {type(exc).__name__}: {exc}", data=exc)


class Body(Effect):
    """Run the flow's or task's function once (one attempt)."""

    __slots__ = ("call", "kind", "run_name", "timeout", "timeout_error")

    def __init__(
        self,
        call: Callable[[], Any],
        kind: str,
        run_name: str,
        timeout: float | None,
        timeout_error: type[TimeoutError],
    ) -> None:
        self.call = call
        self.kind = kind
        self.run_name = run_name
        self.timeout = timeout
        self.timeout_error = timeout_error

    def run_blocking(self) -> Returned | State:
        return call_user_code(
            self.call,
            kind=self.kind,
            run_name=self.run_name,
            timeout=self.timeout,
            timeout_error=self.timeout_error,
        )

    async def run_awaiting(self) -> Returned | State:
        return await call_user_code_async(
            self.call,
            kind=self.kind,
            run_name=self.run_name,
            timeout=self.timeout,
            timeout_error=self.timeout_error,
        )
