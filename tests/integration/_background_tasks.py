"""Tasks served by the background task tests (imported as `_background_tasks` by the
caller and by the task worker alike, so their task keys agree)."""

from __future__ import annotations

import threading
from typing import Any

from stratoflow import task

CALLS: list[tuple[str, Any]] = []
"""Each run of a task appends (task, argument): how many times something really ran."""
EXPLODED: list[str] = []
"""Filled by `Bomb` when a pickle that acts is loaded: must stay empty."""
STARTED = threading.Event()
"""Set by `waits` when its attempt starts."""
GATE = threading.Event()
"""`waits` returns once the test sets it."""


@task
def add(a: int, b: int) -> int:
    CALLS.append(("add", (a, b)))
    return a + b


@task(retries=1, retry_delay_seconds=0)
def flaky(label: str) -> str:
    CALLS.append(("flaky", label))
    if sum(1 for name, _ in CALLS if name == "flaky") == 1:
        raise RuntimeError("first attempt fails")
    return f"ok {label}"


@task
def fail(message: str) -> None:
    CALLS.append(("fail", message))
    raise ValueError(message)


@task
def describe(value: Any) -> str:
    CALLS.append(("describe", value))
    return f"{type(value).__name__}:{sorted(value)}"


@task
def unserved(x: int) -> int:
    return x


@task(retries=1, retry_delay_seconds=0)
def sturdy(label: str) -> str:
    CALLS.append(("sturdy", label))
    return f"ok {label}"


@task(retries=1, retry_delay_seconds=0)
def waits_then_fails(label: str) -> str:
    """Its first attempt runs until the test opens `GATE`, then fails; a second attempt
    would complete."""
    CALLS.append(("waits_then_fails", label))
    if sum(1 for name, _ in CALLS if name == "waits_then_fails") > 1:
        return f"second attempt {label}"
    STARTED.set()
    if not GATE.wait(30):
        raise TimeoutError("the test never opened the gate")
    raise RuntimeError("first attempt fails")


@task
def waits(label: str) -> str:
    """Runs until the test opens `GATE` (an attempt the test can cancel or outlive)."""
    CALLS.append(("waits", label))
    STARTED.set()
    if not GATE.wait(30):
        raise TimeoutError("the test never opened the gate")
    return f"done {label}"


def explode() -> None:
    EXPLODED.append("loaded")


class Bomb:
    """A pickle that acts when loaded (it calls `explode`)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (explode, ())
