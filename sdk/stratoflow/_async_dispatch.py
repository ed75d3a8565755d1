"""Prefect 3's `async_dispatch`: one name that is sync or async depending on the caller.

Prefect's `Variable.get`, `Artifact.create`, `create_markdown_artifact`, ... return a
coroutine when called where an event loop runs (so `await Variable.get("x")` works in
async code) and the value otherwise; `_sync=True` forces the synchronous call. Inside a
run, "async" means the innermost run's function is `async def` (a task run's, else the
flow run's); outside one, that an event loop is running in this thread. The async forms
run the synchronous body in a worker thread (`asyncio.to_thread`, which carries the
run context), so the event loop is not blocked by AWS calls.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from stratoflow.context import flow_run_context, task_run_context

F = TypeVar("F", bound=Callable[..., Any])


def in_async_context() -> bool:
    task_ctx = task_run_context.get()
    if task_ctx is not None:
        return bool(getattr(task_ctx.task, "isasync", False))
    flow_ctx = flow_run_context.get()
    if flow_ctx is not None:
        return bool(getattr(flow_ctx.flow, "isasync", False))
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def async_dispatch(async_impl: Any) -> Callable[[F], F]:
    """Decorate the synchronous form with its async twin (a function or classmethod)."""
    implementation = async_impl.__func__ if isinstance(async_impl, classmethod) else async_impl

    def decorator(sync_fn: F) -> F:
        @functools.wraps(sync_fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            forced = kwargs.pop("_sync", None)
            run_sync = bool(forced) if forced is not None else not in_async_context()
            return (sync_fn if run_sync else implementation)(*args, **kwargs)

        wrapper.aio = implementation  # type: ignore[attr-defined]  # Prefect offers `.aio`
        return wrapper  # type: ignore[return-value]

    return decorator
