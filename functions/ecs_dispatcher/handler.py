"""ECS dispatcher: the SQS event source of a work queue starts one Fargate task per run.

`handler`: per record, claim the run (Scheduled → Pending) and `ecs.run_task` a
container running `strato flow-run execute <id>`; a run whose task cannot start is
marked Crashed. `on_task_stopped`: the EventBridge "ECS Task State Change" rule
(lastStatus STOPPED) marks Crashed a run whose task stopped before the run ended.
Configuration: see stratoflow.workers.ecs (STRATOFLOW_ECS_* environment variables).
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
from stratoflow.workers.ecs import EcsConfig, EcsDispatcher
from stratoflow.workers.ecs import on_task_stopped as task_stopped
from stratoflow.workers.queues import queue_name_from_arn

logger = Logger(service="stratoflow-ecs-dispatcher")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _dispatcher() -> EcsDispatcher:
    platform = get_platform()
    return EcsDispatcher(platform, platform.backend.clients.ecs, EcsConfig.from_env())


def record_handler(record: SQSRecord) -> None:
    arn = _dispatcher().dispatch(
        record.body, queue_name=queue_name_from_arn(record.event_source_arn)
    )
    logger.info(
        "Flow run message dispatched", extra={"message_id": record.message_id, "task_arn": arn}
    )


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)


@logger.inject_lambda_context
def on_task_stopped(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail = event.get("detail") or {}
    state = task_stopped(get_platform(), detail)
    logger.info(
        "ECS task state change",
        extra={
            "task_arn": detail.get("taskArn"),
            "last_status": detail.get("lastStatus"),
            "flow_run_state": state,
        },
    )
    return {"flow_run_state": state}
