"""State-change hooks: run each one, log its failure, never let it change the run.

A hook may be an `async def` function: an async run awaits it on its own event loop; a
sync run runs it to completion (`run_to_completion`)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any

from stratoflow.engine.steps import Effect, run_to_completion

Hook = Callable[..., Any]


def run_hooks(
    hooks: Iterable[Hook], args: tuple[Any, ...], logger: logging.LoggerAdapter[Any]
) -> None:
    for hook in hooks:
        _log_start(hook, args, logger)
        try:
            outcome = hook(*args)
            if inspect.iscoroutine(outcome):
                run_to_completion(outcome)
        except Exception:  # noqa: BLE001 - logged; a hook never changes the run's state
            _log_failure(hook, logger)
        else:
            _log_success(hook, logger)


async def run_hooks_async(
    hooks: Iterable[Hook], args: tuple[Any, ...], logger: logging.LoggerAdapter[Any]
) -> None:
    for hook in hooks:
        _log_start(hook, args, logger)
        try:
            outcome = hook(*args)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:  # noqa: BLE001 - logged; a hook never changes the run's state
            _log_failure(hook, logger)
        else:
            _log_success(hook, logger)


# Prefect's lines; a failing hook never changes the run's state.


def _log_start(hook: Hook, args: tuple[Any, ...], logger: logging.LoggerAdapter[Any]) -> None:
    state = args[-1]
    logger.info(
        "Running hook %r in response to entering state %r", _name(hook), getattr(state, "name", "")
    )


def _log_failure(hook: Hook, logger: logging.LoggerAdapter[Any]) -> None:
    logger.exception("An error was encountered while running hook %r", _name(hook))


def _log_success(hook: Hook, logger: logging.LoggerAdapter[Any]) -> None:
    logger.info("Hook %r finished running successfully", _name(hook))


def _name(hook: Hook) -> str:
    return str(getattr(hook, "__name__", repr(hook)))


class Hooks(Effect):
    """Run a state's hooks with `args` (flow or task, run record, state)."""

    __slots__ = ("args", "hooks", "logger")

    def __init__(
        self, hooks: Iterable[Hook], args: tuple[Any, ...], logger: logging.LoggerAdapter[Any]
    ) -> None:
        self.hooks = hooks
        self.args = args
        self.logger = logger

    def run_blocking(self) -> None:
        run_hooks(self.hooks, self.args, self.logger)

    async def run_awaiting(self) -> None:
        await run_hooks_async(self.hooks, self.args, self.logger)
