"""Run loggers (Prefect's `prefect.logging.loggers`): every line carries its flow run
and task run, and reaches the backend.

- `get_run_logger()`: a logger bound to the current run; outside a run it raises
  MissingContextError, unless the run loggers are disabled (`disable_run_logger()`),
  where it returns a disabled logger, as Prefect's does (so a task's `.fn` can be
  unit-tested without a run).
- `get_logger(name)`: a child of the `stratoflow` logger, for your library code.
- `disable_run_logger()`, `disable_logger(name)`: context managers that silence them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from typing import Any

from stratoflow.context import FlowRunContext, TaskRunContext
from stratoflow.exceptions import MissingContextError
from stratoflow.logging.handlers import setup_logging
from stratoflow.models import FlowRun, TaskRun

__all__ = [
    "FLOW_RUN_LOGGER",
    "TASK_RUN_LOGGER",
    "RunLoggerAdapter",
    "disable_logger",
    "disable_run_logger",
    "get_logger",
    "get_run_logger",
    "run_logger_for",
]

ROOT_LOGGER = "stratoflow"
FLOW_RUN_LOGGER = "stratoflow.flow_runs"
TASK_RUN_LOGGER = "stratoflow.task_runs"


class RunLoggerAdapter(logging.LoggerAdapter[logging.Logger]):
    """Adds the run's ids and names to every record."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs


def get_run_logger(
    context: FlowRunContext | TaskRunContext | None = None, **extra: Any
) -> RunLoggerAdapter | logging.Logger:
    """A logger for the current flow run or task run (or for `context`, when given).

    Raises MissingContextError outside a run, except while the run loggers are disabled
    (`disable_run_logger()`): then a disabled logger is returned.
    """
    task_ctx = TaskRunContext.get()
    flow_ctx = FlowRunContext.get()
    if context is not None:
        if isinstance(context, TaskRunContext):
            task_ctx = context
            flow_ctx = context.flow_run_context
        elif isinstance(context, FlowRunContext):
            task_ctx, flow_ctx = None, context
        else:
            raise TypeError(
                f"Received unexpected type {type(context).__name__!r} for context. "
                "Expected None, a FlowRunContext or a TaskRunContext."
            )
    if task_ctx is None and flow_ctx is None:
        if _run_loggers_disabled():
            silent = logging.getLogger("null")
            silent.disabled = True
            return silent
        raise MissingContextError(
            "There is no active flow or task run. Call this from inside a function decorated "
            "with @flow or @task (or inside `disable_run_logger()` to get a silent logger)."
        )
    return run_logger_for(
        flow_run=flow_ctx.flow_run if flow_ctx else None,
        flow_name=flow_ctx.flow.name if flow_ctx else None,
        task_run=task_ctx.task_run if task_ctx else None,
        **extra,
    )


def run_logger_for(
    *,
    flow_run: FlowRun | None = None,
    flow_name: str | None = None,
    task_run: TaskRun | None = None,
    **extra: Any,
) -> RunLoggerAdapter:
    """A logger bound to the given runs (the engine's own lifecycle messages use it)."""
    setup_logging()
    fields: dict[str, Any] = {}
    if flow_run is not None:
        fields.update(flow_run_id=flow_run.id, flow_run_name=flow_run.name, flow_name=flow_name)
    if task_run is not None:
        fields.update(
            task_run_id=task_run.id, task_run_name=task_run.name, task_name=task_run.task_name
        )
        if task_run.flow_run_id is not None:
            fields.setdefault("flow_run_id", task_run.flow_run_id)
    fields.update(extra)
    name = TASK_RUN_LOGGER if task_run is not None else FLOW_RUN_LOGGER
    return RunLoggerAdapter(logging.getLogger(name), fields)


@functools.cache
def get_logger(name: str | None = None) -> logging.Logger:
    """The `stratoflow` logger, or its child `name` (`"stratoflow.x"` is taken as is)."""
    root = logging.getLogger(ROOT_LOGGER)
    if not name:
        return root
    if name.startswith(f"{ROOT_LOGGER}."):
        return logging.getLogger(name)
    return root.getChild(name)


@contextlib.contextmanager
def disable_logger(name: str) -> Iterator[None]:
    """Disable the logger `name` inside the block; its previous state comes back after."""
    logger = logging.getLogger(name)
    was_disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was_disabled


@contextlib.contextmanager
def disable_run_logger() -> Iterator[None]:
    """Silence the flow run and task run loggers inside the block (as Prefect's), e.g. to
    call a task's `.fn` in a unit test: `get_run_logger()` then works outside a run."""
    with disable_logger(FLOW_RUN_LOGGER), disable_logger(TASK_RUN_LOGGER):
        yield


def _run_loggers_disabled() -> bool:
    return (
        logging.getLogger(FLOW_RUN_LOGGER).disabled and logging.getLogger(TASK_RUN_LOGGER).disabled
    )
