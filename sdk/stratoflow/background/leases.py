"""A task worker's lease on the background task run it holds, and what happens when the
lease ends without the run being final (its worker died: process killed, Lambda timed out,
machine lost).

A worker holds a run from its claim to its final state. It records a heartbeat when it
claims the run and every `heartbeat_seconds` after (`Lease`); each heartbeat moves the
run's `sweep_due` to `zombie_after_seconds` later. A run whose `sweep_due` passed is
abandoned, and whoever finds it first settles it: a task worker that receives its message
again (stratoflow.background.worker), or the crash sweep of the scheduler tick
(stratoflow.background.sweep). Settling is one conditional write (`crash_states`):

- Cancelling: Cancelled (its worker died before it finished the cancellation);
- retries left: Crashed, then AwaitingRetry, in the same write (the run goes on to its
  next attempt, as a flow run does after a crash);
- otherwise: Crashed.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING

from stratoflow.clock import Clock
from stratoflow.models import TaskRun
from stratoflow.states import AwaitingRetry, Cancelled, Crashed, State, StateType

if TYPE_CHECKING:
    from stratoflow.backends.aws.held_task_runs import HeldTaskRuns

logger = logging.getLogger("stratoflow.task_worker")


def is_held(run: TaskRun) -> bool:
    """Whether a worker holds the background run (as read): not final, with a heartbeat
    (a run waiting in the task queue has none)."""
    state = run.state
    return state is not None and not state.is_final() and run.heartbeat is not None


def lease_ended(run: TaskRun, now: datetime) -> bool:
    """Whether the run is held and its worker's lease ended: the worker stopped."""
    return is_held(run) and run.sweep_due is not None and run.sweep_due <= now


def retries_left(run: TaskRun) -> bool:
    """Whether a crashed run goes on to another attempt. A crash before its first attempt
    started counts as that attempt, so a worker that always dies early cannot keep a run
    going forever."""
    return max(run.run_count, 1) <= run.retries


def crash_states(run: TaskRun, found_by: str) -> tuple[list[State], bool]:
    """The states that settle an abandoned run (as read), and whether it goes on to a retry.
    `found_by` says who found it ("the crash sweep", ...): keep it short, the history
    keeps the first 200 characters of a message."""
    assert run.state is not None
    since = run.heartbeat.isoformat() if run.heartbeat else "its claim"
    if run.state.type is StateType.CANCELLING:
        return [
            Cancelled(
                f"Cancelled: its task worker stopped (no heartbeat since {since}) before it "
                f"finished the cancellation; found by {found_by}."
            )
        ], False
    message = (
        f"Its task worker stopped (found by {found_by}): no heartbeat since {since}, while "
        f"the run was {run.state.name}. Its process was killed, its Lambda timed out or its "
        "host was lost."
    )
    if not retries_left(run):
        return [Crashed(message)], False
    attempt = max(run.run_count, 1)
    retry = AwaitingRetry(
        f"Retrying after a crash (attempt {attempt} of {run.retries + 1} crashed)."
    )
    return [Crashed(message, retry=True), retry], True


class Lease:
    """While in its `with` block: every `interval` seconds, renew the lease of a held run
    (its heartbeat, and `sweep_due` `lease_seconds` later)."""

    def __init__(
        self,
        held: HeldTaskRuns,
        run_id: str,
        clock: Clock,
        *,
        interval: float,
        lease_seconds: float,
    ) -> None:
        self.held = held
        self.run_id = run_id
        self.clock = clock
        self.interval = interval
        self.lease_seconds = lease_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"task-run-lease-{run_id[:8]}", daemon=True
        )

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                renewed = self.held.renew(self.run_id, self.clock.now(), self.lease_seconds)
            except Exception:
                # Retried at the next beat; a lease that ends meanwhile is the crash
                # sweep's to settle (the run is then crashed, and retried if it may).
                logger.warning(
                    "Renewing the lease of task run %s failed", self.run_id, exc_info=True
                )
                continue
            if not renewed:
                logger.info(
                    "Task run %s is no longer this worker's to renew (final, or crashed by "
                    "the sweep): its next state write stops it",
                    self.run_id,
                )
                return

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)
