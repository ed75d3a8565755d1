"""`stratoflow.sleep(duration)`: a wait that holds no compute in a deployed run.

In a deployment's run on a worker, the attempt stops (Scheduled, named Sleeping, due at
the wake-up time), and the run's message goes back to its work queue delayed until then
(SQS delays up to 15 minutes; a worker that receives it earlier sends it on with the rest,
and the scheduler tick sends any due run whose message was lost). The next attempt
replays the task runs done before the sleep; the sleep itself, recorded in the run's
`waits` with its wake-up time, returns at once. Anywhere else (a local run, inside a
task) it blocks, as `time.sleep`.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from stratoflow.context import FlowRunContext, task_run_context
from stratoflow.durable.signals import Suspend, can_suspend
from stratoflow.states import Sleeping

SHORTEST_DURABLE_SECONDS = 1.0
"""Shorter (remaining) sleeps block instead: stopping and continuing costs more."""


def sleep(duration: float | timedelta) -> None:
    """Wait `duration` (seconds or a timedelta); durable in a deployed flow function."""
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
    if seconds < 0:
        raise ValueError(f"sleep() needs a duration of 0 or more, got {duration!r}")
    ctx = FlowRunContext.get()
    if ctx is None or task_run_context.get() is not None or not can_suspend(ctx):
        if ctx is not None:
            ctx.services.clock.sleep(seconds)
        else:
            time.sleep(seconds)
        return
    key = ctx.next_wait_key("sleep")
    clock = ctx.services.clock
    now = clock.now()
    run = ctx.flow_run
    recorded = run.waits.get(key)
    if recorded is not None and int(recorded.get("attempt", 0)) < run.replay_since:
        recorded = None  # from an attempt a `retry --from-scratch` left behind
    until = _recorded_until(recorded) or now + timedelta(seconds=seconds)
    remaining = (until - now).total_seconds()
    if remaining <= 0:
        return
    if remaining < SHORTEST_DURABLE_SECONDS:
        clock.sleep(remaining)
        return
    state = Sleeping(
        f"Sleeping until {until.isoformat()} ({key}).", scheduled_time=until.isoformat()
    )
    wait = {"kind": "sleep", "until": until.isoformat(), "attempt": run.run_count}
    raise Suspend(state, key, wait, send_after=remaining)


def _recorded_until(recorded: dict[str, object] | None) -> datetime | None:
    if not recorded or not isinstance(recorded.get("until"), str):
        return None
    try:
        return datetime.fromisoformat(str(recorded["until"]))
    except ValueError:
        return None
