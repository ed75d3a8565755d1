"""Run logs, laid out as Prefect's `prefect.logging` package.

- `stratoflow.logging.loggers`: `get_run_logger()`, `get_logger()`,
  `disable_run_logger()`, `disable_logger()`.
- `stratoflow.logging.handlers`: the backend and console handlers, `setup_logging()`.
- `stratoflow.logging.prints`: `log_prints=True` turns `print()` into run log lines.

Every name that `stratoflow.logging` had as a module is still importable from here.
"""

from stratoflow.logging.handlers import (
    BackendLogHandler,
    ConsoleFormatter,
    ConsoleHandler,
    setup_logging,
)
from stratoflow.logging.loggers import (
    FLOW_RUN_LOGGER,
    TASK_RUN_LOGGER,
    RunLoggerAdapter,
    disable_logger,
    disable_run_logger,
    get_logger,
    get_run_logger,
    run_logger_for,
)
from stratoflow.logging.prints import install_print_capture, log_prints_enabled

__all__ = [
    "FLOW_RUN_LOGGER",
    "TASK_RUN_LOGGER",
    "BackendLogHandler",
    "ConsoleFormatter",
    "ConsoleHandler",
    "RunLoggerAdapter",
    "disable_logger",
    "disable_run_logger",
    "get_logger",
    "get_run_logger",
    "install_print_capture",
    "log_prints_enabled",
    "run_logger_for",
    "setup_logging",
]
