"""Lambda worker: the SQS event source of a work queue runs each flow run in-process.

Partial batch responses: a record that fails (or is handed back because too little
time is left in the invocation) is reported in `batchItemFailures` and delivered again;
the others are deleted by Lambda. A malformed record is dead-lettered with its reason
and counts as processed.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from stratoflow.platform import get_platform
from stratoflow.workers.lambda_worker import process_record
from stratoflow.workers.queues import queue_name_from_arn

logger = Logger(service="stratoflow-worker")
# One record failing (or all of them) is a partial response, never an invocation error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    state = process_record(
        get_platform(),
        record.body,
        queue_name=queue_name_from_arn(record.event_source_arn),
        remaining_seconds=lambda_context.get_remaining_time_in_millis() / 1000,
        worker=f"lambda:{lambda_context.function_name}",
    )
    logger.info(
        "Flow run message processed",
        extra={"message_id": record.message_id, "state": state.name if state else None},
    )


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
