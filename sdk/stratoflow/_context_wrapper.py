"""The callable `stratoflow.context.with_context` returns: in this process it runs the
function in a copy of the context variables it captured; pickled to another process it
carries the serialized run context, which `hydrate` (`hydrated_context`) rebuilds around
each call there."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from contextvars import Context
from typing import Any

import cloudpickle

Hydrate = Callable[[Mapping[str, Any]], AbstractContextManager[None]]


class ContextWrappedCallable:
    """Call it anywhere; pickle it to another process (standard pickle: `fn` must be
    importable, as `multiprocessing` requires; the context travels as cloudpickle bytes)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        serialized: Mapping[str, Any],
        hydrate: Hydrate,
        local: Context | None,
    ) -> None:
        self.fn = fn
        self._serialized = serialized
        self._hydrate = hydrate
        self._local = local
        self._pid = os.getpid()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._local is not None and self._pid == os.getpid():
            # A copy per call: one Context cannot be entered by two threads at once.
            return self._local.copy().run(self.fn, *args, **kwargs)
        # Unpickled in another process, or inherited by a forked one.
        with self._hydrate(self._serialized):
            return self.fn(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        try:
            payload = cloudpickle.dumps(self._serialized)
        except Exception as exc:
            raise TypeError(
                f"{self!r} cannot be sent to another process: the run context does not "
                f"pickle ({type(exc).__name__}: {exc}). The flow, the task and their "
                "parameters must be picklable for that; threads of this process need none "
                "of it."
            ) from exc
        return (_rebuild, (self.fn, payload, self._hydrate))

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", None) or repr(self.fn)
        return f"with_context({name})"


def _rebuild(fn: Callable[..., Any], payload: bytes, hydrate: Hydrate) -> ContextWrappedCallable:
    # The payload comes from the process that pickled the wrapper (this one's parent,
    # through multiprocessing's pipe), never from storage a worker could write.
    return ContextWrappedCallable(fn, cloudpickle.loads(payload), hydrate, None)
