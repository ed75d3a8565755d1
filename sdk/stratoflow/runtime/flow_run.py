"""The current flow run: `id`, `name`, `flow_name`, `parameters`, `run_count`, `tags`,
`parent_flow_run_id`, `scheduled_start_time`."""

from __future__ import annotations

from typing import Any

from stratoflow.context import FlowRunContext, flow_run_context, task_run_context

__all__ = [
    "flow_name",
    "id",
    "name",
    "parameters",
    "parent_flow_run_id",
    "run_count",
    "scheduled_start_time",
    "tags",
]


def _context() -> FlowRunContext | None:
    ctx = flow_run_context.get()
    if ctx is None:
        task_ctx = task_run_context.get()
        ctx = task_ctx.flow_run_context if task_ctx else None
    return ctx


def _read(name: str) -> Any:
    ctx = _context()
    if ctx is None:
        return {} if name == "parameters" else (() if name == "tags" else None)
    run = ctx.flow_run
    if name == "parameters":
        return dict(ctx.parameters)
    if name == "flow_name":
        return ctx.flow.name
    if name == "scheduled_start_time":
        return run.created
    return getattr(run, name)


def __getattr__(name: str) -> Any:
    if name in __all__:
        return _read(name)
    raise AttributeError(f"stratoflow.runtime.flow_run has no attribute {name!r}")
