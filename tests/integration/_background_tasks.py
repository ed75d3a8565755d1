"""Tasks served by the background task tests (imported as `_background_tasks` by the
caller and by the task worker alike, so their task keys agree)."""

from __future__ import annotations

from typing import Any

from stratoflow import task

CALLS: list[tuple[str, Any]] = []
"""Each run of a task appends (task, argument): how many times something really ran."""
EXPLODED: list[str] = []
"""Filled by `Bomb` when a pickle that acts is loaded: must stay empty."""


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


def explode() -> None:
    EXPLODED.append("loaded")


class Bomb:
    """A pickle that acts when loaded (it calls `explode`)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (explode, ())
