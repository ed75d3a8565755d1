"""One SQS queue per work queue, each with its dead-letter queue (names and max receive
count from `stratoflow.resources`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stratoflow import resources
from stratoflow.deployments.models import WorkPoolSpec

RETENTION = Duration.seconds(resources.QUEUE_RETENTION_SECONDS)
"""SQS's longest retention, for both: time to look at a dead-lettered message and
redrive it; a run's message waits for a worker (or a resumed queue) as long as it can."""


@dataclass(frozen=True)
class WorkQueue:
    pool: WorkPoolSpec
    name: str
    queue: sqs.Queue
    dead_letter_queue: sqs.Queue


class WorkQueues(Construct):
    """`visibility_seconds` maps a pool type to the visibility timeout of its queues,
    derived from the timeout of the worker that consumes them."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        pools: tuple[WorkPoolSpec, ...],
        visibility_seconds: Mapping[str, int],
    ) -> None:
        super().__init__(scope, construct_id)
        self.prefix = prefix
        self.queues: list[WorkQueue] = []
        for pool in pools:
            for spec in pool.queues:
                cid = f"{pool.name}.{spec.name}"  # unique: SQS names have no '.'
                dlq = sqs.Queue(
                    self,
                    f"{cid}.dlq",
                    queue_name=resources.dead_letter_queue_name(prefix, pool.name, spec.name),
                    encryption=sqs.QueueEncryption.SQS_MANAGED,
                    enforce_ssl=True,
                    retention_period=RETENTION,
                    removal_policy=RemovalPolicy.DESTROY,
                )
                queue = sqs.Queue(
                    self,
                    cid,
                    queue_name=resources.work_queue_name(prefix, pool.name, spec.name),
                    encryption=sqs.QueueEncryption.SQS_MANAGED,
                    enforce_ssl=True,
                    visibility_timeout=Duration.seconds(visibility_seconds[pool.type]),
                    retention_period=RETENTION,
                    dead_letter_queue=sqs.DeadLetterQueue(
                        queue=dlq, max_receive_count=resources.MAX_RECEIVE_COUNT
                    ),
                    removal_policy=RemovalPolicy.DESTROY,
                )
                self.queues.append(WorkQueue(pool, spec.name, queue, dlq))

    def of_type(self, kind: str) -> list[WorkQueue]:
        return [q for q in self.queues if q.pool.type == kind]

    @property
    def all_queues(self) -> list[sqs.IQueue]:
        return [q.queue for q in self.queues]

    @property
    def dead_letter_queues(self) -> list[sqs.IQueue]:
        return [q.dead_letter_queue for q in self.queues]
