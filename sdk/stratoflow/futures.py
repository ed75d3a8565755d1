"""Futures for submitted task runs, and `wait` / `as_completed` helpers."""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from stratoflow.annotations import ANNOTATIONS, quote
from stratoflow.engine.collections import rebuild_children
from stratoflow.states import Pending, State

if TYPE_CHECKING:
    from stratoflow.models import TaskRun

R = TypeVar("R")


class StratoFuture(Generic[R]):
    """The eventual outcome of a submitted task run."""

    __slots__ = ("_future", "task_run")

    def __init__(self, task_run: TaskRun, future: cf.Future[State]) -> None:
        self.task_run = task_run
        self._future = future

    @property
    def task_run_id(self) -> str:
        return self.task_run.id

    @property
    def state(self) -> State:
        """The final state when done, otherwise the run's current state."""
        if self._future.done():
            return self._future.result()
        return self.task_run.state or Pending()

    def done(self) -> bool:
        return self._future.done()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the task run is final, or until `timeout` seconds have passed."""
        cf.wait([self._future], timeout=timeout)

    def final_state(self, timeout: float | None = None) -> State:
        """The final state; raises TimeoutError when not final within `timeout`."""
        return self._future.result(timeout=timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """The task's return value, waiting for it.

        Raises the task's exception when it failed (or returns it with
        `raise_on_failure=False`), and TimeoutError when not done within `timeout`.
        """
        return self.final_state(timeout).result(raise_on_failure=raise_on_failure)  # type: ignore[no-any-return]

    def add_done_callback(self, fn: Callable[[StratoFuture[R]], None]) -> None:
        self._future.add_done_callback(lambda _: fn(self))

    def __repr__(self) -> str:
        return f"StratoFuture(task_run={self.task_run.name!r}, state={self.state!r})"


class StratoFutureList(list[StratoFuture[R]]):
    """The futures of a `task.map()` call."""

    def wait(self, timeout: float | None = None) -> None:
        wait(self, timeout=timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[R]:
        _done, not_done = wait(self, timeout=timeout)
        if not_done:
            raise TimeoutError(f"{len(not_done)} of {len(self)} task runs did not finish in time")
        return [f.result(raise_on_failure=raise_on_failure) for f in self]


# Prefect's names for the same classes.
PrefectFuture = StratoFuture
PrefectConcurrentFuture = StratoFuture
PrefectFutureList = StratoFutureList


class DoneAndNotDoneFutures(NamedTuple, Generic[R]):
    done: set[StratoFuture[R]]
    not_done: set[StratoFuture[R]]


def wait(
    futures: Iterable[StratoFuture[R]], timeout: float | None = None
) -> DoneAndNotDoneFutures[R]:
    """Wait for all futures (or until `timeout`); returns which are done and which not."""
    by_inner = {f._future: f for f in futures}
    done, not_done = cf.wait(by_inner, timeout=timeout)
    return DoneAndNotDoneFutures({by_inner[f] for f in done}, {by_inner[f] for f in not_done})


def as_completed(
    futures: Iterable[StratoFuture[R]], timeout: float | None = None
) -> Iterator[StratoFuture[R]]:
    """Yield futures as their task runs finish; TimeoutError after `timeout` seconds."""
    by_inner = {f._future: f for f in futures}
    for inner in cf.as_completed(by_inner, timeout=timeout):
        yield by_inner[inner]


def resolve_futures_to_states(expr: Any) -> Any:
    """`expr` with every future inside it (lists, tuples, sets, dicts, dataclasses,
    pydantic models, annotations; not inside `quote`) replaced by its final state,
    waiting for each (Prefect's `resolve_futures_to_states`)."""
    return _resolve_futures(expr, lambda future: future.final_state())


def resolve_futures_to_results(expr: Any) -> Any:
    """`expr` with every future inside it replaced by its result; raises when one did
    not complete (Prefect's `resolve_futures_to_results`)."""

    def result(future: StratoFuture[Any]) -> Any:
        state = future.final_state()
        if not state.is_completed():
            raise Exception("At least one result did not complete successfully")
        return state.result()

    return _resolve_futures(expr, result)


_LEAVES = (str, int, float, bool, type(None), bytes, State, quote)


def _resolve_futures(expr: Any, resolve: Callable[[StratoFuture[Any]], Any]) -> Any:
    seen: dict[int, Any] = {}

    def visit(value: Any) -> Any:
        if isinstance(value, _LEAVES):
            return value
        if isinstance(value, StratoFuture):
            return resolve(value)
        if isinstance(value, ANNOTATIONS):
            inner = visit(value.value)
            return value if inner is value.value else value.rewrap(inner)
        return rebuild_children(value, visit, seen)

    resolved = visit(expr)
    # A map()'s futures come back as a plain list: the list's methods expect futures.
    return list(resolved) if isinstance(resolved, StratoFutureList) else resolved


def resolved_future(task_run: TaskRun, state: State) -> StratoFuture[Any]:
    future: cf.Future[State] = cf.Future()
    future.set_result(state)
    return StratoFuture(task_run, future)
