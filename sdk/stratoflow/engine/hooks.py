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
        try:
            outcome = hook(*args)
            if inspect.iscoroutine(outcome):
                run_to_completion(outcome)
        except Exception:
            logger.exception("Hook %r failed; the run's state is unchanged.", _name(hook))
        else:
            _log_success(hook, logger)


async def run_hooks_async(
    hooks: Iterable[Hook], args: tuple[Any, ...], logger: logging.LoggerAdapter[Any]
) -> None:
    for hook in hooks:
        try:
            outcome = hook(*args)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            logger.exception("Hook %r failed; the run's state is unchanged.", _name(hook))
        else:
            _log_success(hook, logger)


def _log_success(hook: Hook, logger: logging.LoggerAdapter[Any]) -> None:
    logger.debug("Hook %r finished.", _name(hook))


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
