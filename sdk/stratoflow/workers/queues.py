"""Work queues are SQS queues (each with a dead-letter queue) named from the resource model."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from stratoflow import resources
from stratoflow.exceptions import ObjectNotFound
from stratoflow.workers.messages import FlowRunMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType as QueueAttributeName

MAX_DELAY_SECONDS = 900
"""SQS's longest message delay."""
PREFETCH_LEAD_SECONDS = 2.0
"""A run's message arrives this much before the run is due; its worker waits for the
exact start, so a run starts on time to well under a second."""
REASON_ATTRIBUTE = "stratoflow-dead-letter-reason"


class UnknownWorkQueue(ObjectNotFound):
    """The work queue's SQS queue does not exist."""


def queue_url(client: SQSClient, name: str, *, missing: str) -> str:
    """The URL of the SQS queue `name`; UnknownWorkQueue(`missing`) when it does not exist."""
    try:
        return str(client.get_queue_url(QueueName=name)["QueueUrl"])
    except ClientError as exc:
        if "NonExistentQueue" in exc.response["Error"]["Code"]:
            raise UnknownWorkQueue(missing) from None
        raise


@dataclass(frozen=True)
class QueueDepth:
    """SQS's approximate counts of a work queue's messages (and of its DLQ's)."""

    waiting: int
    """Visible: runs due that no worker has received yet."""
    in_flight: int
    """Received by a worker and not deleted yet (running, or held until their start)."""
    delayed: int
    """Sent with a delay: scheduled runs not due yet (up to 15 minutes ahead)."""
    dead_letters: int


DEPTH_ATTRIBUTES: tuple[QueueAttributeName, ...] = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


class WorkQueues:
    def __init__(self, client: SQSClient, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def _url(self, name: str) -> str:
        url = self._urls.get(name)
        if url is None:
            url = queue_url(
                self.client,
                name,
                missing=f"The SQS queue {name!r} does not exist. Create the work queue "
                "(cdk deploy, or stratoflow.resources.provision for the emulator).",
            )
            with self._lock:
                self._urls[name] = url
        return url

    def name(self, pool: str, queue: str) -> str:
        """The SQS queue name of a work queue."""
        return resources.work_queue_name(self.prefix, pool, queue)

    def url(self, pool: str, queue: str) -> str:
        return self._url(self.name(pool, queue))

    def dead_letter_url(self, pool: str, queue: str) -> str:
        return self._url(resources.dead_letter_queue_name(self.prefix, pool, queue))

    def depth(self, pool: str, queue: str) -> QueueDepth:
        """How many messages the work queue and its DLQ hold (two GetQueueAttributes)."""
        counts = self._counts(self.url(pool, queue))
        dead = self._counts(self.dead_letter_url(pool, queue))
        return QueueDepth(
            waiting=counts["ApproximateNumberOfMessages"],
            in_flight=counts["ApproximateNumberOfMessagesNotVisible"],
            delayed=counts["ApproximateNumberOfMessagesDelayed"],
            dead_letters=dead["ApproximateNumberOfMessages"],
        )

    def _counts(self, url: str) -> dict[str, int]:
        attributes = self.client.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=list(DEPTH_ATTRIBUTES),
        )["Attributes"]
        return {name: int(attributes.get(name, "0")) for name in DEPTH_ATTRIBUTES}

    def send(
        self, pool: str, queue: str, message: FlowRunMessage, *, delay_seconds: float = 0
    ) -> str:
        """Send a run's message; `delay_seconds` is how long until the run is due.

        The message becomes visible PREFETCH_LEAD_SECONDS early (SQS delays are whole
        seconds and long polls notice a delayed message late), and the worker that gets
        it holds it until the exact start. Returns the message id."""
        delay = int(min(max(delay_seconds - PREFETCH_LEAD_SECONDS, 0), MAX_DELAY_SECONDS))
        # The message says where it was sent, so a copy planted elsewhere is refused.
        message = message.model_copy(update={"work_pool": pool, "work_queue": queue})
        response = self.client.send_message(
            QueueUrl=self.url(pool, queue), MessageBody=message.body(), DelaySeconds=delay
        )
        return response["MessageId"]

    def dead_letter(self, pool: str, queue: str, body: str, reason: str) -> None:
        """Move a message that can never be processed to the DLQ, with the reason."""
        self._dead_letter(self.dead_letter_url(pool, queue), body, reason)

    def dead_letter_from(self, queue_name: str, body: str, reason: str) -> None:
        """`dead_letter` for a message of the SQS queue called `queue_name` (a Lambda event
        source names its queue by ARN, not by pool and work queue)."""
        self._dead_letter(self._url(resources.dead_letter_queue_of(queue_name)), body, reason)

    def _dead_letter(self, dlq_url: str, body: str, reason: str) -> None:
        self.client.send_message(
            QueueUrl=dlq_url,
            MessageBody=body or "<empty>",
            MessageAttributes={
                REASON_ATTRIBUTE: {"DataType": "String", "StringValue": reason[:1000]}
            },
        )


def queue_name_from_arn(arn: str) -> str:
    """`arn:aws:sqs:<region>:<account>:<name>` → `<name>`."""
    return arn.rsplit(":", 1)[-1]
