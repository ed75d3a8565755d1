"""The current task run: `id`, `name`, `task_name`, `parameters`, `run_count`, `tags`."""

from __future__ import annotations

from typing import Any

from stratoflow.context import task_run_context

__all__ = ["id", "name", "parameters", "run_count", "tags", "task_name"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"stratoflow.runtime.task_run has no attribute {name!r}")
    ctx = task_run_context.get()
    if ctx is None:
        return {} if name == "parameters" else (() if name == "tags" else None)
    if name == "parameters":
        return dict(ctx.parameters)
    return getattr(ctx.task_run, name)
