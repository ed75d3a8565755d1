"""Run a function with a time limit.

The function runs in a helper thread (with the caller's context variables) and the
caller waits at most `timeout` seconds. On expiry the caller gets the timeout error at
once, and the helper thread is sent the same exception asynchronously so that Python
code in it stops at its next bytecode. A thread blocked inside a C call (a socket read,
`time.sleep`) stops when that call returns; its result is discarded.
"""

from __future__ import annotations

import contextvars
import ctypes
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _raise_in_thread(thread: threading.Thread, exc_type: type[BaseException]) -> None:
    if thread.ident is None or not thread.is_alive():
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(exc_type)
    )


class _Outcome:
    __slots__ = ("error", "value")

    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None


def call_with_timeout(
    fn: Callable[[], T],
    timeout: float | None,
    make_error: Callable[[], BaseException],
    *,
    thread_name: str = "stratoflow-timeout",
) -> T:
    """`fn()`, or raise `make_error()` when it takes more than `timeout` seconds."""
    if timeout is None:
        return fn()
    outcome = _Outcome()
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome.value = context.run(fn)
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller below
            outcome.error = exc

    worker = threading.Thread(target=target, name=thread_name, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        error = make_error()
        _raise_in_thread(worker, type(error))
        raise error
    if outcome.error is not None:
        raise outcome.error
    return outcome.value  # type: ignore[no-any-return]
