"""Lambda task worker: the task queue's SQS event source runs each background task run
in-process (stratoflow.background.lambda_worker).

Partial batch responses: a record that fails (or is handed back because too little time
is left) is reported in `batchItemFailures` and delivered again; a refused record is
dead-lettered with its reason and counts as processed.
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

from stratoflow.background.lambda_worker import process_task_record, worker_from_settings
from stratoflow.background.worker import TaskWorker
from stratoflow.settings import get_settings
from stratoflow.workers.queues import queue_name_from_arn

logger = Logger(service="stratoflow-task-worker")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
_worker: TaskWorker | None = None


def worker() -> TaskWorker:
    """One per sandbox: the served modules are imported once."""
    global _worker
    if _worker is None:
        _worker = worker_from_settings(get_settings())
    return _worker


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    state = process_task_record(
        worker(),
        record.body,
        queue_name=queue_name_from_arn(record.event_source_arn),
        remaining_seconds=lambda_context.get_remaining_time_in_millis() / 1000,
        min_remaining_seconds=get_settings().lambda_worker_min_remaining_seconds,
    )
    logger.info(
        "Task run message processed",
        extra={"message_id": record.message_id, "state": state.name if state else None},
    )


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
