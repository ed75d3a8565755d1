"""`log_prints=True`: `print()` inside a run becomes an INFO line of that run.

`print` is patched once, on the first run that asks for it; outside such runs (and for
prints to another file than stdout) it behaves as the built-in.
"""

from __future__ import annotations

import builtins
import sys
import threading
from contextvars import ContextVar
from typing import Any

from stratoflow.logging.loggers import get_run_logger

__all__ = ["install_print_capture", "log_prints_enabled"]

log_prints_enabled: ContextVar[bool] = ContextVar("stratoflow_log_prints", default=False)

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
