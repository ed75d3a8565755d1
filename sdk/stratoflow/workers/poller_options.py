"""What an on-prem poller (`strato worker start`, stratoflow.workers.poller) is asked to
do: the work pool and queues it serves, how many runs it runs at once, and its timings.

`stratoflow.workers.poller` exports both names too (the CLI, the stack and tests import
them from there).
"""

from __future__ import annotations

from dataclasses import dataclass

from stratoflow.exceptions import StratoflowError


class WorkerConfigError(StratoflowError):
    """The worker cannot serve what it was asked to (unknown queue, wrong pool type)."""


@dataclass
class PollerOptions:
    pool: str
    queues: tuple[str, ...] = ()
    """Work queues to poll (default: every queue of the pool)."""
    limit: int = 4
    """Flow runs this worker runs at once."""
    name: str | None = None
    wait_seconds: int = 20
    """Long-poll wait of ReceiveMessage (0 to 20)."""
    visibility_timeout: int = 90
    """A received message stays invisible this long, extended while its run runs."""
    extend_every: float = 30.0
    state_check_every: float = 2.0
    heartbeat_every: float = 10.0
    pool_refresh_every: float = 30.0
    shutdown_grace: float = 30.0
    kill_grace: float = 10.0
    """After SIGTERM, a process gets this long before SIGKILL."""
    delete_within: float = 1.0
    """The message of an ended run is deleted within this long, together with the others
    ended meanwhile (stratoflow.workers.deletions; 0: each at once)."""
    defer_seconds: int = 10
    """A run waiting for a concurrency slot is offered again after this long."""
    idle_sleep: float = 1.0
    supervise_every: float = 0.1
    """A pass reads nothing from AWS unless something is due: often, so that an ended
    run's slot is offered again at once."""
    background: bool = True
    """Supervise from a thread (False: from the receive loop, for tests)."""
