"""Flow-run heartbeats as items of their own: `FLOWRUN#<id>` / `HEARTBEAT`.

A beat used to rewrite the run's item, which sits on three indexes projecting every
attribute: ~8 write units every `heartbeat_seconds` (10 s) for as long as a run ran,
plus a stored event. This item is on no index and holds only what the heartbeat event
names (the run's name, state and related resources): one write unit. It expires a week
after its last beat (the zombie sweep only reads beats of Running runs).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from stratoflow import resources
from stratoflow.backends.aws.items import from_item, state_to_map, to_item
from stratoflow.models import FlowRun

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = logging.getLogger("stratoflow.sweeps")

KEEP_FOR = timedelta(days=7)
BATCH_GET_KEYS = 100
"""BatchGetItem's limit per request."""


def heartbeat_item(run: FlowRun, at: datetime) -> dict[str, Any]:
    state = state_to_map(run.state, message_limit=200) if run.state is not None else None
    return to_item(
        {
            **resources.flow_run_heartbeat_key(run.id),
            "heartbeat": at.isoformat(),
            "name": run.name,
            "flow_name": run.flow_name,
            "deployment_name": run.deployment_name,
            "work_pool_name": run.work_pool_name,
            "work_queue_name": run.work_queue_name,
            "tags": list(run.tags) or None,
            "state": {k: v for k, v in state.items() if v is not None} if state else None,
            resources.TTL_ATTRIBUTE: int((at + KEEP_FOR).timestamp()),
        }
    )


def _moment(value: Any) -> datetime | None:
    """An aware ISO time, or None for anything else."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def write_heartbeat(client: DynamoDBClient, table: str, run: FlowRun, at: datetime) -> None:
    client.put_item(TableName=table, Item=heartbeat_item(run, at))


def read_heartbeats(
    client: DynamoDBClient, table: str, flow_run_ids: Sequence[str]
) -> dict[str, datetime]:
    """Strongly consistent: the zombie sweep must not crash a run for a beat it missed."""
    beats: dict[str, datetime] = {}
    ids = list(dict.fromkeys(flow_run_ids))
    for start in range(0, len(ids), BATCH_GET_KEYS):
        keys: list[Any] = [
            {k: {"S": v} for k, v in resources.flow_run_heartbeat_key(i).items()}
            for i in ids[start : start + BATCH_GET_KEYS]
        ]
        request: Any = {table: {"Keys": keys, "ConsistentRead": True}}
        while request:
            response = client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table, []):
                raw = from_item(item)
                run_id = str(raw[resources.PARTITION_KEY]).removeprefix("FLOWRUN#")
                beat = _moment(raw.get("heartbeat"))
                if beat is None:
                    # A worker wrote the item: one it garbled is no sign of life, and must
                    # not stop the sweep of every other run.
                    logger.warning("Unreadable heartbeat item of flow run %s: ignored", run_id)
                    continue
                beats[run_id] = beat
            request = response.get("UnprocessedKeys") or None
    return beats
