"""`.delay(...)` with the AWS backend: store the parameters and the Scheduled run, then
send its message to the task queue, in that order, so a task worker never gets a message
whose run or parameters are not there yet."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from stratoflow.backends.aws.backend import AwsBackend
from stratoflow.backends.aws.items import task_run_to_item
from stratoflow.background.futures import BackgroundTaskFuture
from stratoflow.background.messages import TaskRunMessage
from stratoflow.background.parameters import encode_parameters
from stratoflow.background.queue import TaskQueue
from stratoflow.background.store import TaskRunParameters
from stratoflow.context import Services
from stratoflow.exceptions import ConflictError
from stratoflow.models import TaskRun
from stratoflow.settings import get_settings
from stratoflow.states import Failed
from stratoflow.workers.queues import UnknownWorkQueue

if TYPE_CHECKING:
    from stratoflow.tasks import Task


def submit_to_queue(
    task: Task[..., Any],
    task_run: TaskRun,
    parameters: dict[str, Any],
    upstream: tuple[str, ...],
    services: Services,
) -> BackgroundTaskFuture[Any]:
    backend = services.backend
    if not isinstance(backend, AwsBackend):
        raise TypeError(f"{type(backend).__name__} is neither the memory nor the AWS backend")
    stored = encode_parameters(
        parameters,
        task_run_id=task_run.id,
        task_name=task.name,
        pickle_allowed=services.pickle_results or task.options.result_serializer == "cloudpickle",
        signer=services.result_signer,
        wait_for=upstream,
    )
    TaskRunParameters(backend.dynamodb, backend.table).write(task_run.id, stored)
    try:
        backend.dynamodb.put_item(
            TableName=backend.table,
            Item=task_run_to_item(task_run),
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise ConflictError(f"Task run {task_run.id} already exists") from None
        raise
    queue = TaskQueue(backend.clients.sqs, get_settings().queue_prefix)
    try:
        queue.send(TaskRunMessage(task_run_id=task_run.id, task_key=task.task_key))
    except (ClientError, BotoCoreError, UnknownWorkQueue) as exc:
        # Not sent: no worker will ever run it, so say so on the run, then re-raise.
        backend.set_task_run_state(
            task_run.id, Failed(f"Its message could not be sent to {queue.name!r}: {exc}")
        )
        raise
    return BackgroundTaskFuture(task_run.id, services)
