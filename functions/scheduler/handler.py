"""Scheduler Lambda: invoked by an EventBridge rule every minute.

Parse the scheduled event, run one tick, report what it did.
"""

# No `from __future__ import annotations`: pydantic resolves ScheduledEvent's fields from
# this module, which the runtime (and the tests) may load without registering it.

from dataclasses import asdict
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from stratoflow.platform import get_platform
from stratoflow.scheduler import Scheduler

logger = Logger(service="stratoflow-scheduler")


class ScheduledEvent(BaseModel):
    """The fields of EventBridge's scheduled event the tick uses. Our own model, not the
    powertools parser's `EventBridgeModel`: the parser's models package loads every AWS
    event model (~70 ms of the cold start, bench/cold_start.py)."""

    model_config = ConfigDict(populate_by_name=True)

    time: datetime
    detail_type: str = Field(alias="detail-type")
    source: str


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    scheduled_at = ScheduledEvent.model_validate(event).time
    report = Scheduler(get_platform()).tick(
        time_left=lambda: context.get_remaining_time_in_millis() / 1000
    )
    # Under one key: some report fields (`created`) are LogRecord attributes, which
    # `extra` may not overwrite.
    logger.info(
        "Scheduler tick", extra={"event_time": scheduled_at.isoformat(), "tick": asdict(report)}
    )
    if report.errors:
        logger.warning("Some deployments could not be scheduled", extra={"errors": report.errors})
    return asdict(report)
