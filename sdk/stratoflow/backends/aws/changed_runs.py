"""Flow runs whose state changed since a moment, from the `by_state` index: what the
flow-run events derived on read come from (stratoflow.events.on_read).

The index holds each final run under its state type, sorted by when it entered that
state (items.state_index_keys), so a finished run with a state change at or after T,
whose final state was entered at or after T, is found by one Query per final type from T
on. The runs that are not final are in `STATE#ACTIVE`, sorted by their creation, and
(runs written before that partition existed) in the `STATE#<type>` partitions of the
active types: those are read whole. They hold the runs waiting to start, running or
paused, not the history of an installation.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stratoflow import resources
from stratoflow.backends.aws.flow_run_lists import ACTIVE_STATE_TYPES, EARLIER, LATEST
from stratoflow.backends.aws.items import from_item, to_attribute
from stratoflow.backends.aws.own_keys import OwnItems, string_attribute
from stratoflow.states import StateType

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

FINAL_TYPES = tuple(t for t in StateType if t not in ACTIVE_STATE_TYPES)
"""State types whose runs the index sorts by when they entered their state."""
READ_WHOLE = LATEST + EARLIER
"""Partitions of the runs that are not final (`STATE#<type>`: runs written before)."""


@dataclass(frozen=True)
class ChangedRun:
    item: dict[str, Any]
    """The run's item, deserialized (with its state history)."""
    changed: datetime | None
    """When its current state was entered, as the index orders it: runs come latest
    first. None for the runs that are not final, which come before, in no order (and
    for a sort key that is not a time: a worker may write its run's item)."""


def flow_runs_changed_since(
    client: DynamoDBClient, table: str, moment: datetime
) -> Iterator[ChangedRun]:
    """Every flow run whose state may have changed at or after `moment`: the runs that are
    not final, then the final ones by the time their final state was entered, latest
    first (so a reader may stop early). Read lazily, page by page; an item whose key is
    not a flow run's is left out (own_keys.py); a run read twice (it moved between
    partitions under the eventually consistent index) is given once."""
    lower = moment.astimezone(UTC).isoformat()
    seen: set[str] = set()
    with OwnItems("flow run", _run_key) as own:
        for partition in READ_WHOLE:
            for _, item in _partition(client, table, partition, None, own):
                if item[resources.PARTITION_KEY] not in seen:
                    seen.add(item[resources.PARTITION_KEY])
                    yield ChangedRun(item, None)
        latest_first = [
            _partition(client, table, resources.state_partition(t.value), lower, own)
            for t in FINAL_TYPES
        ]
        for key, item in heapq.merge(*latest_first, key=lambda pair: pair[0], reverse=True):
            if item[resources.PARTITION_KEY] not in seen:
                yield ChangedRun(item, _time_of(key))


def _time_of(sort_key: str) -> datetime | None:
    # Items written before carry a `#<id>` tie-breaker.
    try:
        moment = datetime.fromisoformat(sort_key.split("#", 1)[0])
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _partition(
    client: DynamoDBClient, table: str, partition: str, lower: str | None, own: OwnItems
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(index sort key, item) of one `by_state` partition's runs, latest first."""
    index = resources.BY_STATE
    condition = "#p = :p"
    names = {"#p": index.partition_key}
    values: dict[str, Any] = {":p": to_attribute(partition)}
    if lower is not None:
        condition += " AND #s >= :since"
        names["#s"] = index.sort_key
        values[":since"] = to_attribute(lower)
    paginator = client.get_paginator("query")
    for page in paginator.paginate(
        TableName=table,
        IndexName=index.name,
        KeyConditionExpression=condition,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
        ScanIndexForward=False,
    ):
        for item in own(page["Items"]):
            yield string_attribute(item, index.sort_key), from_item(item)


def _run_key(item: Mapping[str, Any]) -> Mapping[str, str]:
    # The run the derivation names is its partition key's (not an `id` attribute).
    pk = string_attribute(item, resources.PARTITION_KEY)
    if not pk.startswith("FLOWRUN#"):
        raise KeyError(resources.PARTITION_KEY)
    return resources.flow_run_key(pk.removeprefix("FLOWRUN#"))
