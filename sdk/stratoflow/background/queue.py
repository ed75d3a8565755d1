"""The installation's background task queue (`<queue prefix>-tasks`) and its DLQ."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stratoflow import resources
from stratoflow.background.messages import TaskRunMessage
from stratoflow.workers.queues import REASON_ATTRIBUTE, queue_url

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class TaskQueue:
    def __init__(self, client: SQSClient, prefix: str) -> None:
        self.client = client
        self.name = resources.task_queue_name(prefix)
        self.dead_letter_name = resources.dead_letter_queue_of(self.name)
        self._urls: dict[str, str] = {}

    def _url(self, name: str) -> str:
        url = self._urls.get(name)
        if url is None:
            url = queue_url(
                self.client,
                name,
                missing=f"The task queue {name!r} does not exist. Create it (cdk deploy with "
                "this version, or stratoflow.resources.provision for the emulator).",
            )
            self._urls[name] = url
        return url

    @property
    def url(self) -> str:
        return self._url(self.name)

    def send(self, message: TaskRunMessage, *, delay_seconds: int = 0) -> str:
        response = self.client.send_message(
            QueueUrl=self.url, MessageBody=message.body(), DelaySeconds=delay_seconds
        )
        return response["MessageId"]

    def receive(self, *, max_messages: int, wait_seconds: int, visibility: int) -> list[Any]:
        response = self.client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max(1, min(max_messages, 10)),
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility,
        )
        return list(response.get("Messages", []))

    def delete(self, receipt_handle: str) -> None:
        self.client.delete_message(QueueUrl=self.url, ReceiptHandle=receipt_handle)

    def dead_letter(self, body: str, reason: str) -> None:
        """Copy a message that will never run to the DLQ, with the reason."""
        self.client.send_message(
            QueueUrl=self._url(self.dead_letter_name),
            MessageBody=body or "<empty>",
            MessageAttributes={
                REASON_ATTRIBUTE: {"DataType": "String", "StringValue": reason[:1000]}
            },
        )
