"""Worker heartbeats: each poller keeps an item `WORKER#<pool>` / `<name>` up to date, so
`strato worker ls` shows who is polling what. The items expire (DynamoDB TTL) five
minutes after a worker's last heartbeat; a clean shutdown deletes its item at once."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from stratoflow import resources
from stratoflow.backends.aws.items import from_item, to_attribute, to_item
from stratoflow.backends.aws.own_keys import OwnItems, string_attribute

if TYPE_CHECKING:
    from stratoflow.platform import Platform

ALIVE_SECONDS = 60.0
"""A worker seen this recently is alive."""
EXPIRES_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    pool: str
    queues: tuple[str, ...]
    running: int
    limit: int
    last_seen: datetime
    started: datetime | None
    hostname: str | None
    pid: int | None
    alive: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pool": self.pool,
            "queues": list(self.queues),
            "running": self.running,
            "limit": self.limit,
            "last_seen": self.last_seen.isoformat(),
            "started": self.started.isoformat() if self.started else None,
            "hostname": self.hostname,
            "pid": self.pid,
            "alive": self.alive,
        }


def default_worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def record_heartbeat(
    platform: Platform,
    *,
    pool: str,
    name: str,
    queues: Sequence[str],
    running: int,
    limit: int,
    now: datetime,
    started: datetime,
) -> None:
    index = resources.BY_TIME
    backend = platform.backend
    backend.dynamodb.put_item(
        TableName=backend.table,
        Item=to_item(
            {
                **resources.worker_key(pool, name),
                "entity": "worker",
                "name": name,
                "pool": pool,
                "queues": list(queues),
                "running": running,
                "limit": limit,
                "last_seen": now.isoformat(),
                "started": started.isoformat(),
                "hostname": socket.gethostname(),
                "pid": os.getpid(),
                resources.TTL_ATTRIBUTE: int((now + EXPIRES_AFTER).timestamp()),
                index.partition_key: resources.WORKERS_PARTITION,
                index.sort_key: f"{pool}#{name}",
            }
        ),
    )


def remove_worker(platform: Platform, *, pool: str, name: str) -> None:
    backend = platform.backend
    backend.dynamodb.delete_item(
        TableName=backend.table, Key=to_item(resources.worker_key(pool, name))
    )


def list_workers(
    platform: Platform, pool: str | None = None, *, now: datetime | None = None
) -> list[WorkerInfo]:
    """Workers whose heartbeat has not expired, by pool and name."""
    now = now or platform.services.clock.now()
    backend = platform.backend
    index = resources.BY_TIME
    condition = "#p = :p"
    values: dict[str, Any] = {":p": to_attribute(resources.WORKERS_PARTITION)}
    if pool is not None:
        condition += " AND begins_with(#s, :s)"
        values[":s"] = to_attribute(f"{pool}#")
    paginator = backend.dynamodb.get_paginator("query")
    workers = []
    pages = paginator.paginate(
        TableName=backend.table,
        IndexName=index.name,
        KeyConditionExpression=condition,
        ExpressionAttributeNames={"#p": index.partition_key}
        | ({"#s": index.sort_key} if pool is not None else {}),
        ExpressionAttributeValues=values,
    )
    # Only heartbeat items themselves, not other items carrying the WORKERS partition.
    with OwnItems("worker", _worker_key) as own:
        for page in pages:
            for item in own(page["Items"]):
                raw = from_item(item)
                if pool is not None and raw["pool"] != pool:
                    continue
                # DynamoDB deletes expired items lazily (within days): skip them here.
                if int(raw.get(resources.TTL_ATTRIBUTE, 0)) <= now.timestamp():
                    continue
                workers.append(_info(raw, now))
    return sorted(workers, key=lambda w: (w.pool, w.name))


def _worker_key(item: Mapping[str, Any]) -> Mapping[str, str]:
    return resources.worker_key(string_attribute(item, "pool"), string_attribute(item, "name"))


def _info(raw: dict[str, Any], now: datetime) -> WorkerInfo:
    last_seen = datetime.fromisoformat(str(raw["last_seen"]))
    started = raw.get("started")
    pid = raw.get("pid")
    return WorkerInfo(
        name=str(raw["name"]),
        pool=str(raw["pool"]),
        queues=tuple(str(q) for q in raw.get("queues") or ()),
        running=int(raw.get("running", 0)),
        limit=int(raw.get("limit", 0)),
        last_seen=last_seen,
        started=datetime.fromisoformat(str(started)) if started else None,
        hostname=raw.get("hostname"),
        pid=int(pid) if pid is not None else None,
        alive=(now - last_seen).total_seconds() <= ALIVE_SECONDS,
    )
