"""Run loggers: every line carries its flow run and task run, and reaches the backend.

`get_run_logger()` returns a logger bound to the current run. `log_prints=True` turns
`print()` calls inside a run into INFO lines of that run.
"""

from __future__ import annotations

import builtins
import logging
import sys
import threading
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from stratoflow.context import flow_run_context, get_run_context, get_services, task_run_context
from stratoflow.models import FlowRun, LogEntry, TaskRun

FLOW_RUN_LOGGER = "stratoflow.flow_runs"
TASK_RUN_LOGGER = "stratoflow.task_runs"

log_prints_enabled: ContextVar[bool] = ContextVar("stratoflow_log_prints", default=False)


class RunLoggerAdapter(logging.LoggerAdapter[logging.Logger]):
    """Adds the run's ids and names to every record."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs


def get_run_logger(**extra: Any) -> RunLoggerAdapter:
    """A logger for the current flow run or task run.

    Raises MissingContextError outside a run; use `logging.getLogger` there.
    """
    get_run_context()  # raises outside a run
    task_ctx = task_run_context.get()
    flow_ctx = flow_run_context.get()
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


class ConsoleFormatter(logging.Formatter):
    """`12:00:01.234 | INFO    | Task run 'extract-0' - message`."""

    def __init__(self) -> None:
        super().__init__(datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        task_run_name = getattr(record, "task_run_name", None)
        flow_run_name = getattr(record, "flow_run_name", None)
        if task_run_name:
            label = f"Task run {task_run_name!r} - "
        elif flow_run_name:
            label = f"Flow run {flow_run_name!r} - "
        else:
            label = ""
        time = self.formatTime(record, self.datefmt)
        line = (
            f"{time}.{int(record.msecs):03d} | {record.levelname:<7} | {label}{record.getMessage()}"
        )
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


class BackendLogHandler(logging.Handler):
    """Sends run log lines to the backend of the current services."""

    def emit(self, record: logging.LogRecord) -> None:
        flow_run_id = getattr(record, "flow_run_id", None)
        task_run_id = getattr(record, "task_run_id", None)
        if flow_run_id is None and task_run_id is None:
            return
        try:
            message = record.getMessage()
            if record.exc_info:
                message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
            entry = LogEntry(
                timestamp=datetime.fromtimestamp(record.created, UTC),
                level=record.levelno,
                level_name=record.levelname,
                logger=record.name,
                message=message,
                flow_run_id=flow_run_id,
                task_run_id=task_run_id,
                flow_run_name=getattr(record, "flow_run_name", None),
                task_run_name=getattr(record, "task_run_name", None),
            )
            get_services().backend.write_logs([entry])
        except Exception:  # noqa: BLE001 - logging must never break a run
            self.handleError(record)


_setup_lock = threading.Lock()
_configured = False


def setup_logging(force: bool = False) -> None:
    """Configure the `stratoflow` logger once (not at import time)."""
    global _configured
    if _configured and not force:
        return
    with _setup_lock:
        if _configured and not force:
            return
        from stratoflow.settings import get_settings

        settings = get_settings()
        root = logging.getLogger("stratoflow")
        for handler in list(root.handlers):
            if isinstance(handler, BackendLogHandler | _ConsoleHandler):
                root.removeHandler(handler)
        root.setLevel(settings.logging_level)
        root.propagate = False
        root.addHandler(BackendLogHandler())
        if settings.log_to_console:
            console = _ConsoleHandler()
            console.setFormatter(ConsoleFormatter())
            root.addHandler(console)
        _configured = True


class _ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the *current* sys.stderr, so captured streams (pytest, CLI) see it."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


_original_print = builtins.print
_print_patch_lock = threading.Lock()


def _print_to_run_log(
    *args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    if log_prints_enabled.get() and (file is None or file is sys.stdout):
        message = (sep if sep is not None else " ").join(str(a) for a in args)
        get_run_logger().info(message)
        return
    _original_print(*args, sep=sep, end=end, file=file, flush=flush)


def install_print_capture() -> None:
    """Route `print` through the run logger where `log_prints` is on (elsewhere unchanged)."""
    if builtins.print is _print_to_run_log:
        return
    with _print_patch_lock:
        builtins.print = _print_to_run_log
