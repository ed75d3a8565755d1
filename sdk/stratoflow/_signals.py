"""Stopping long-running processes (workers) cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def stop_on_signals(request_stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM and SIGINT call `request_stop` (the previous handlers come back after).

    Installed explicitly, not left to Python's KeyboardInterrupt: a process started with
    SIGINT ignored (a background job of a shell) would otherwise never stop on it, and
    SIGTERM is what ECS, systemd and Kubernetes send."""
    previous = {
        signum: signal.signal(signum, lambda *_: request_stop())
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
