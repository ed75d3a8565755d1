"""Where run log lines go (Prefect's `prefect.logging.handlers`): the backend of the
current services, and stderr in the `12:00:01.234 | INFO    | Task run 'x' - ...` form.

`setup_logging()` attaches both to the `stratoflow` logger, once, on first use.
"""

from __future__ import annotations

import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any

from stratoflow.context import get_services
from stratoflow.models import LogEntry

__all__ = ["BackendLogHandler", "ConsoleFormatter", "ConsoleHandler", "setup_logging"]


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


class ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the *current* sys.stderr, so captured streams (pytest, CLI) see it."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


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
            if isinstance(handler, BackendLogHandler | ConsoleHandler):
                root.removeHandler(handler)
        root.setLevel(settings.logging_level)
        root.propagate = False
        root.addHandler(BackendLogHandler())
        if settings.log_to_console:
            console = ConsoleHandler()
            console.setFormatter(ConsoleFormatter())
            root.addHandler(console)
        _configured = True
