"""Commit and rollback hooks: running one (an engine effect), and registering them on a
task with `@my_task.on_commit` / `@my_task.on_rollback` (as in Prefect 3)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from stratoflow.engine.steps import Effect, run_to_completion

HookT = TypeVar("HookT", bound=Callable[..., Any])


def hook_name(hook: Callable[..., Any]) -> str:
    return str(getattr(hook, "__name__", repr(hook)))


class TransactionHook(Effect):
    """Call `hook(transaction)`. A sync driver runs an `async def` hook to completion;
    the async driver awaits it. Its exception is thrown back into the transaction's
    steps, which roll back (a commit hook) or stop the rollback (a rollback hook)."""

    __slots__ = ("hook", "kind", "logger", "transaction")

    def __init__(
        self,
        hook: Callable[..., Any],
        transaction: Any,
        kind: str,
        logger: logging.Logger | logging.LoggerAdapter[Any],
    ) -> None:
        self.hook = hook
        self.transaction = transaction
        self.kind = kind
        self.logger = logger

    def run_blocking(self) -> None:
        self._log_start()
        outcome = self.hook(self.transaction)
        if inspect.iscoroutine(outcome):
            run_to_completion(outcome)
        self._log_end()

    async def run_awaiting(self) -> None:
        self._log_start()
        outcome = self.hook(self.transaction)
        if inspect.isawaitable(outcome):
            await outcome
        self._log_end()

    def _logs(self) -> bool:
        # Prefect's way to silence a hook's log lines (the engine's own hooks use it).
        return bool(getattr(self.hook, "log_on_run", True))

    def _log_start(self) -> None:
        if self._logs():
            self.logger.info("Running %s hook %r", self.kind, hook_name(self.hook))

    def _log_end(self) -> None:
        if self._logs():
            self.logger.info(
                "%s hook %r finished running successfully",
                self.kind.capitalize(),
                hook_name(self.hook),
            )


class TransactionHookDecorators:
    """`@my_task.on_commit` and `@my_task.on_rollback`: add a hook to the task's options
    and return it unchanged. Mixed into `Task`, whose `_add_hook` registers it (as for
    `@my_task.on_completion`)."""

    options: Any

    def _add_hook(self, kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        raise NotImplementedError  # Task's

    def on_commit(self, fn: HookT) -> HookT:
        self._add_hook("on_commit", fn)
        return fn

    def on_rollback(self, fn: HookT) -> HookT:
        self._add_hook("on_rollback", fn)
        return fn

    @property
    def on_commit_hooks(self) -> list[Callable[..., Any]]:
        return list(self.options.on_commit)

    @property
    def on_rollback_hooks(self) -> list[Callable[..., Any]]:
        return list(self.options.on_rollback)
