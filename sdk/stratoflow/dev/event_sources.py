"""What AWS does between our resources and our Lambdas, done locally with the same event
shapes: an EventBridge rule's ticks, the DynamoDB stream event source mapping (partial
batch failures, bounded retries, then the failure destination) and the SQS event
source mapping (delete what succeeded)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from stratoflow.platform import Platform
from stratoflow.resources import work_queue_name

logger = logging.getLogger("stratoflow.dev")
Invoke = Callable[[str, dict[str, Any]], Any]
REGION = "us-east-1"
ACCOUNT = "123456789012"


def scheduled_event(now: datetime, rule: str = "stratoflow-scheduler") -> dict[str, Any]:
    """EventBridge's "Scheduled Event", as the scheduler Lambda receives it."""
    return {
        "version": "0",
        "id": f"local-{int(now.timestamp())}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule}"],
        "detail": {},
    }


class StreamSource:
    """The table's DynamoDB stream → the automations handler."""

    def __init__(
        self, platform: Platform, invoke: Invoke, *, max_retries: int = 2, batch_size: int = 100
    ) -> None:
        self.platform = platform
        self.invoke = invoke
        self.max_retries = max_retries
        self.batch_size = batch_size
        clients = platform.backend.clients
        self.streams = clients.dynamodbstreams
        table = clients.dynamodb.describe_table(TableName=platform.backend.table)["Table"]
        self.stream_arn: str = table["LatestStreamArn"]
        self._iterators: dict[str, str] = {}
        self.dropped: list[dict[str, Any]] = []
        """Records that failed every retry: what the failure destination would receive."""

    def _refresh_shards(self) -> None:
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"][
            "Shards"
        ]
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn,
                    ShardId=shard_id,
                    ShardIteratorType="TRIM_HORIZON",
                )["ShardIterator"]

    def poll(self) -> int:
        """Deliver what the stream has; returns how many records were delivered."""
        self._refresh_shards()
        delivered = 0
        for shard_id, iterator in list(self._iterators.items()):
            response = self.streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
            self._iterators[shard_id] = response.get("NextShardIterator") or iterator
            records = [
                {**record, "eventSourceARN": self.stream_arn} for record in response["Records"]
            ]
            if records:
                self._deliver(records)
                delivered += len(records)
        return delivered

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        pending = records
        for attempt in range(self.max_retries + 1):
            response = self.invoke("automations", {"Records": pending}) or {}
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            if not failed:
                return
            pending = [r for r in pending if r["dynamodb"]["SequenceNumber"] in failed]
            logger.warning(
                "Automations handler failed %d stream record(s) (attempt %d)",
                len(pending),
                attempt + 1,
            )
        self.dropped.extend(pending)
        logger.error(
            "Skipping %d stream record(s) after %d retries (the failure destination gets "
            "them in AWS): %s",
            len(pending),
            self.max_retries,
            [r["dynamodb"]["SequenceNumber"] for r in pending],
        )


class LambdaWorkerSource:
    """The work queues of `lambda` work pools → the Lambda worker handler."""

    def __init__(self, platform: Platform, invoke: Invoke, *, batch_size: int = 10) -> None:
        self.platform = platform
        self.invoke = invoke
        self.batch_size = batch_size

    def _queues(self) -> list[tuple[str, str]]:
        return [
            (pool.name, queue.name)
            for pool in self.platform.work_pools.list()
            if pool.type == "lambda"
            for queue in pool.by_priority()
            if not queue.paused
        ]

    def poll(self) -> int:
        delivered = 0
        sqs = self.platform.queues.client
        for pool, queue in self._queues():
            url = self.platform.queues.url(pool, queue)
            messages = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=self.batch_size,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                continue
            name = work_queue_name(self.platform.settings.queue_prefix, pool, queue)
            arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
            event = sqs_event(messages, arn)
            response = self.invoke("lambda_worker", event) or {}
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            for message in messages:
                if message["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            delivered += len(messages)
        return delivered


def sqs_event(
    messages: Iterable[Mapping[str, Any]], queue_arn: str, region: str = REGION
) -> dict[str, Any]:
    """Messages from ReceiveMessage as the SQS event source mapping hands them to a
    function (the local runtime plays that mapping; tests use it too)."""
    return {"Records": [_sqs_record(message, queue_arn, region) for message in messages]}


def _sqs_record(message: Mapping[str, Any], arn: str, region: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "dataType": value.get("DataType", "String"),
                "stringListValues": [],
                "binaryListValues": [],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }
