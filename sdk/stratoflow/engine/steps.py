"""One engine for `def` and `async def` flows and tasks: its steps, and two drivers.

The flow and task engines are written once, as generators ("steps") that yield an
`Effect` wherever the two kinds of function differ: running the user's function,
waiting (a retry delay, a concurrency slot), running hooks. Everything else (the
state machine, its transitions, caching, results) runs inside the generator, so sync
and async runs share it. A driver runs the generator to its end:

- `drive` performs each effect by blocking the calling thread (a `def` function);
- `drive_async` awaits each effect on the running event loop (an `async def` one).

An exception raised by an effect is thrown back into the steps at the `yield`, so
the engines handle crashes (KeyboardInterrupt, asyncio.CancelledError) as they would
handle them around a direct call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextvars
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

from stratoflow.clock import Clock, SystemClock

T = TypeVar("T")

Steps = Generator["Effect", Any, T]
"""An engine's steps: yields effects, receives their values, returns its outcome."""


class Effect(ABC):
    """Something the steps need done that a sync run blocks on and an async run awaits."""

    __slots__ = ()

    @abstractmethod
    def run_blocking(self) -> Any: ...

    @abstractmethod
    async def run_awaiting(self) -> Any: ...


def drive(steps: Steps[T]) -> T:
    """Run `steps` to the end in this thread, blocking on each effect."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = steps.send(value) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        try:
            value, error = effect.run_blocking(), None
        except BaseException as exc:  # noqa: BLE001 - thrown back into the steps
            value, error = None, exc


async def drive_async(steps: Steps[T]) -> T:
    """Run `steps` to the end on the running event loop, awaiting each effect."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = steps.send(value) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        try:
            value, error = await effect.run_awaiting(), None
        except BaseException as exc:  # noqa: BLE001 - thrown back into the steps
            value, error = None, exc


def run_to_completion(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from synchronous code and return its value: on a new event loop
    in this thread, or in a helper thread when this thread already runs a loop (sync
    code called from async code cannot block on that same loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # The helper thread sees this thread's context variables (the run contexts).
    context = contextvars.copy_context()
    with cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="stratoflow-async") as pool:
        return pool.submit(context.run, asyncio.run, coroutine).result()


class Sleep(Effect):
    """A retry delay, on the services' clock."""

    __slots__ = ("clock", "seconds")

    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds

    def run_blocking(self) -> None:
        self.clock.sleep(self.seconds)

    async def run_awaiting(self) -> None:
        if isinstance(self.clock, SystemClock):
            await asyncio.sleep(self.seconds)
        else:
            # Another clock (a test's FakeClock) may block: keep the loop free meanwhile.
            await asyncio.to_thread(self.clock.sleep, self.seconds)


class Blocking(Effect):
    """A call that may wait a long time (a concurrency slot, submitted task runs): an
    async run makes it in a thread so that its event loop keeps running other runs
    (one of which may be what the call waits for)."""

    __slots__ = ("call",)

    def __init__(self, call: Callable[[], Any]) -> None:
        self.call = call

    def run_blocking(self) -> Any:
        return self.call()

    async def run_awaiting(self) -> Any:
        call = asyncio.ensure_future(asyncio.to_thread(self.call))
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            # A thread cannot be stopped: let the call end, so that whatever it did (a
            # slot it took) is in place when the steps handle the cancellation.
            await asyncio.wait([call])
            raise
