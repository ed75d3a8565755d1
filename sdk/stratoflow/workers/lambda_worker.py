"""The Lambda worker: a work queue's SQS event source runs each flow run in the
invocation itself (functions/lambda_worker/handler.py is the thin Lambda side).

A record that cannot start safely in the time left is handed back (HandBack: the
handler reports it as a batch item failure and SQS delivers it again) rather than being
killed half-way by the Lambda timeout.
"""

from __future__ import annotations

import logging

from stratoflow.exceptions import StratoflowError
from stratoflow.platform import Platform
from stratoflow.states import State
from stratoflow.workers.execute import NotRunnable, execute_flow_run
from stratoflow.workers.messages import MalformedMessage, parse_message
from stratoflow.workers.triage import Drop, SendOn, seconds_until_due, send_on, triage

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
) -> State | None:
    """Run one SQS record's flow run. Returns its state, or None when there was nothing
    to run (malformed: dead-lettered; stale or duplicate: dropped; not due: sent on).
    Raises HandBack when less than `min_remaining_seconds` are left."""
    try:
        message = parse_message(body)
    except MalformedMessage as exc:
        logger.error("Moving a message of %s to its dead-letter queue: %s", queue_name, exc)
        platform.queues.dead_letter_from(queue_name, body, str(exc))
        return None
    threshold = (
        platform.settings.lambda_worker_min_remaining_seconds
        if min_remaining_seconds is None
        else min_remaining_seconds
    )
    if remaining_seconds < threshold:
        raise HandBack(
            f"Only {remaining_seconds:.0f} s left in this invocation (under {threshold:.0f} s): "
            f"flow run {message.flow_run_id} goes back to its queue."
        )
    decision = triage(platform, message, platform.services.clock.now())
    if isinstance(decision, Drop):
        logger.info("Dropping the message of flow run %s: %s", message.flow_run_id, decision.reason)
        return None
    if isinstance(decision, SendOn):
        send_on(platform, decision.run, message, decision.delay_seconds)
        return None
    clock = platform.services.clock
    clock.sleep(seconds_until_due(decision.run, clock.now()))  # at most a few seconds
    try:
        return execute_flow_run(message.flow_run_id, platform, worker=worker)
    except NotRunnable as exc:
        logger.info("Nothing to do: %s", exc)
        return None
