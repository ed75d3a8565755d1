"""The work pool an on-prem poller (stratoflow.workers.poller) serves, and the SQS queues
of it that the poller receives from.

The pool is read when the poller starts (a pool of another type, or a queue it does not
have, stops the poller there) and again every `pool_refresh_every` seconds, so that a
queue paused or resumed meanwhile is skipped or received from again; a failed re-read
keeps the pool as last read. Queues are taken highest priority first.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stratoflow.clock import Clock
from stratoflow.deployments.models import WorkPoolSpec, WorkQueueSpec
from stratoflow.exceptions import StratoflowError
from stratoflow.platform import Platform
from stratoflow.workers.poller_options import PollerOptions, WorkerConfigError

logger = logging.getLogger("stratoflow.workers")


class PoolQueues:
    def __init__(
        self, platform: Platform, options: PollerOptions, *, clock: Clock, next_refresh: datetime
    ) -> None:
        self.platform = platform
        self.options = options
        self.clock = clock
        self.sqs = platform.queues.client
        self.pool: WorkPoolSpec | None = None
        """The pool as last read (None: not read yet)."""
        self.next_refresh = next_refresh

    def refresh(self, *, strict: bool) -> None:
        self.next_refresh = self.clock.now() + timedelta(seconds=self.options.pool_refresh_every)
        try:
            pool = self.platform.work_pools.get(self.options.pool)
            if pool.type != "process":
                raise WorkerConfigError(
                    f"Work pool {pool.name!r} is of type {pool.type!r}: its runs are taken by "
                    f"the {pool.type} worker. `strato worker start` serves pools of type "
                    "'process'."
                )
            known = {q.name for q in pool.queues}
            unknown = [q for q in self.options.queues if q not in known]
            if unknown:
                raise WorkerConfigError(
                    f"Work pool {pool.name!r} has no queue {', '.join(map(repr, unknown))} "
                    f"(queues: {', '.join(sorted(known))})"
                )
            selected = [
                q for q in pool.queues if not self.options.queues or q.name in self.options.queues
            ]
            for queue in selected:
                self.platform.queues.url(pool.name, queue.name)  # UnknownWorkQueue
        except (StratoflowError, BotoCoreError, ClientError):
            if strict or self.pool is None:
                raise
            logger.warning("Could not re-read work pool %r", self.options.pool, exc_info=True)
            return
        if self.pool is not None:
            for before, after in _pause_changes(self.pool, pool):
                logger.info("Work queue %s/%s %s", pool.name, before, after)
        self.pool = pool

    def selected(self, *, include_paused: bool = False) -> list[WorkQueueSpec]:
        if self.pool is None:
            return []
        return [
            q
            for q in self.pool.by_priority()
            if (not self.options.queues or q.name in self.options.queues)
            and (include_paused or not q.paused)
        ]

    @property
    def names(self) -> list[str]:
        return [q.name for q in self.selected(include_paused=True)]

    def url(self, queue: str) -> str:
        return self.platform.queues.url(self.options.pool, queue)

    def name(self, queue: str) -> str:
        return self.platform.queues.name(self.options.pool, queue)

    def receive(self, queue: WorkQueueSpec, count: int, wait: int) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.url(queue.name),
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait,
            VisibilityTimeout=self.options.visibility_timeout,
        )
        return [dict(m) for m in response.get("Messages", [])]


def _pause_changes(before: WorkPoolSpec, after: WorkPoolSpec) -> list[tuple[str, str]]:
    was = {q.name: q.paused for q in before.queues}
    return [
        (q.name, "paused" if q.paused else "resumed")
        for q in after.queues
        if q.name in was and was[q.name] != q.paused
    ]
