"""State-change hooks: run each one, log its failure, never let it change the run."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any


def run_hooks(
    hooks: Iterable[Callable[..., Any]], args: tuple[Any, ...], logger: logging.LoggerAdapter[Any]
) -> None:
    for hook in hooks:
        name = getattr(hook, "__name__", repr(hook))
        try:
            hook(*args)
        except Exception:
            logger.exception("Hook %r failed; the run's state is unchanged.", name)
        else:
            logger.debug("Hook %r finished.", name)
