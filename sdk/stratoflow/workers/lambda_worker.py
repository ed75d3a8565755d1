"""The Lambda worker: a work queue's SQS event source runs each flow run in the
invocation itself (functions/lambda_worker/handler.py is the thin Lambda side).

A record that cannot start safely in the time left is handed back (HandBack: the
handler reports it as a batch item failure and SQS delivers it again) rather than being
killed half-way by the Lambda timeout. A run that started hands itself back at a task
boundary when the invocation's time runs short (HandedBack, sent to its queue again):
the next invocation replays what it did and continues, so a flow may run for hours as
long as each task fits an invocation (docs/durability.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from stratoflow.exceptions import StratoflowError
from stratoflow.platform import Platform
from stratoflow.states import State
from stratoflow.workers.execute import NotRunnable, execute_flow_run
from stratoflow.workers.triage import Drop, SendOn, admit, seconds_until_due, send_on

logger = logging.getLogger("stratoflow.workers")


class HandBack(StratoflowError):
    """Too little time is left to start this run: let SQS deliver it again."""


def process_record(
    platform: Platform,
    body: str,
    *,
    queue_name: str,
    remaining_seconds: float,
    min_remaining_seconds: float | None = None,
    worker: str | None = None,
    time_left: Callable[[], float] | None = None,
) -> State | None:
    """Run one SQS record's flow run. Returns its state, or None when there was nothing
    to run (malformed, or a run of another pool or queue than `queue_name`'s:
    dead-lettered; stale or duplicate: dropped; not due: sent on). Raises HandBack when
    less than `min_remaining_seconds` are left to start a due run. `time_left` tells the
    seconds left in the invocation (by default, counted down from `remaining_seconds`)."""
    if time_left is None:
        deadline = time.monotonic() + remaining_seconds
        time_left = lambda: deadline - time.monotonic()  # noqa: E731
    decision = admit(platform, body, queue_name=queue_name, now=platform.services.clock.now())
    if isinstance(decision, Drop):
        return None
    if isinstance(decision, SendOn):
        send_on(platform, decision.run, decision.message, decision.delay_seconds)
        return None
    threshold = (
        platform.settings.lambda_worker_min_remaining_seconds
        if min_remaining_seconds is None
        else min_remaining_seconds
    )
    if remaining_seconds < threshold:
        raise HandBack(
            f"Only {remaining_seconds:.0f} s left in this invocation (under {threshold:.0f} s): "
            f"flow run {decision.run.id} goes back to its queue."
        )
    clock = platform.services.clock
    clock.sleep(seconds_until_due(decision.run, clock.now()))  # at most a few seconds
    try:
        return execute_flow_run(
            decision.run.id,
            platform,
            worker=worker,
            queue_name=queue_name,
            time_left=time_left,
            read=decision.run,  # the triage's read: the claim is conditional on its version
        )
    except NotRunnable as exc:
        logger.info("Nothing to do: %s", exc)
        return None
