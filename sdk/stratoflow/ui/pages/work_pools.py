"""Work pools and their queues: each pool's live workers (their heartbeat items), its
queues' SQS depths, the concurrency limits with the slots in use, and pausing or resuming
a queue (as `strato work-queue pause|resume`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from aws_lambda_powertools.event_handler import Response

from stratoflow.concurrency import ConcurrencyLimitNotFound, read_concurrency_limit
from stratoflow.platform import Platform, get_platform
from stratoflow.ui.http import new_router, path_value, redirect, work_pool_url
from stratoflow.ui.rendering import render
from stratoflow.workers.queues import QueueDepth, UnknownWorkQueue
from stratoflow.workers.registry import WorkerInfo, list_workers

if TYPE_CHECKING:
    # Types only: the models load the schedules' libraries, which pages without a
    # deployment do not need at the Lambda's start.
    from stratoflow.deployments.models import WorkPoolSpec, WorkQueueSpec

router = new_router()


@dataclass(frozen=True)
class LimitUse:
    """A pool's or queue's concurrency limit and the slots its runs hold now."""

    limit: int
    in_use: int | None
    """None: the global limit is not stored (the pool was not deployed with it yet)."""


@dataclass(frozen=True)
class QueueView:
    spec: WorkQueueSpec
    depth: QueueDepth | None
    """None: its SQS queue does not exist (infrastructure not deployed)."""
    limit: LimitUse | None

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class PoolView:
    spec: WorkPoolSpec
    queues: list[QueueView]
    workers: list[WorkerInfo]
    limit: LimitUse | None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def alive(self) -> int:
        return sum(1 for worker in self.workers if worker.alive)

    @property
    def waiting(self) -> int:
        return sum(queue.depth.waiting for queue in self.queues if queue.depth is not None)


def limit_use(limit: int | None, limit_name: str, now: datetime) -> LimitUse | None:
    """The slots held under the global limit `strato deploy` keeps for a pool or queue."""
    if limit is None:
        return None
    try:
        stored = read_concurrency_limit(limit_name)
    except ConcurrencyLimitNotFound:
        return LimitUse(limit, None)
    return LimitUse(limit, stored.leased_slots(now))


def queue_depth(platform: Platform, pool: str, queue: str) -> QueueDepth | None:
    """A queue's SQS depths; None for a queue whose SQS queue does not exist (yet)."""
    try:
        return platform.queues.depth(pool, queue)
    except UnknownWorkQueue:
        return None


def pool_view(platform: Platform, pool: WorkPoolSpec, workers: list[WorkerInfo]) -> PoolView:
    """A pool with its queues' depths (SQS attributes, as `strato work-pool inspect`) and
    limits, and the workers of `workers` that poll it."""
    # On use: deploy.py holds the limits' names and loads the deploy machinery.
    from stratoflow.deployments.deploy import work_pool_limit_name, work_queue_limit_name

    now = platform.services.clock.now()
    queues = []
    for queue in pool.by_priority():
        depth = queue_depth(platform, pool.name, queue.name)
        limit = limit_use(
            queue.concurrency_limit, work_queue_limit_name(pool.name, queue.name), now
        )
        queues.append(QueueView(queue, depth, limit))
    return PoolView(
        spec=pool,
        queues=queues,
        workers=[worker for worker in workers if worker.pool == pool.name],
        limit=limit_use(pool.concurrency_limit, work_pool_limit_name(pool.name), now),
    )


@router.get("/work-pools")
def list_work_pools() -> Response[str]:
    platform = get_platform()
    workers = list_workers(platform)
    pools = [pool_view(platform, pool, workers) for pool in platform.work_pools.list()]
    return render("work_pools/list.html", active="work-pools", pools=pools)


@router.get("/work-pools/<pool_name>")
def work_pool_page(pool_name: str) -> Response[str]:
    pool_name = path_value(pool_name)
    platform = get_platform()
    pool = platform.work_pools.get(pool_name)
    view = pool_view(platform, pool, list_workers(platform, pool.name))
    return render("work_pools/page.html", active="work-pools", pool=view)


@router.post("/work-pools/<pool_name>/queues/<queue_name>/pause")
def pause_work_queue(pool_name: str, queue_name: str) -> Response[str]:
    """`strato work-queue pause`: pollers skip the queue; its runs wait in SQS."""
    pool_name = path_value(pool_name)
    queue_name = path_value(queue_name)
    get_platform().work_pools.set_queue_paused(pool_name, queue_name, True)
    return redirect(work_pool_url(pool_name))


@router.post("/work-pools/<pool_name>/queues/<queue_name>/resume")
def resume_work_queue(pool_name: str, queue_name: str) -> Response[str]:
    """`strato work-queue resume`."""
    pool_name = path_value(pool_name)
    queue_name = path_value(queue_name)
    get_platform().work_pools.set_queue_paused(pool_name, queue_name, False)
    return redirect(work_pool_url(pool_name))
