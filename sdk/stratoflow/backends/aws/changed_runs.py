"""Flow runs whose state changed since a moment, from the `by_state` index: what the
flow-run events derived on read come from (stratoflow.events.on_read).

The index holds each run under its current state type, sorted by when it entered that
state (items.state_sort_time), so a run with a state change at or after T, whose current
state was entered at or after T, is found by one Query per state type from T on. Two
types sort by another time: SCHEDULED runs by when they should start, PAUSED runs by when
their pause times out. Their partitions are read whole: they hold the runs waiting to
start or to resume, not the history of an installation.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stratoflow import resources
from stratoflow.backends.aws.items import from_item, to_attribute
from stratoflow.backends.aws.own_keys import OwnItems, string_attribute
from stratoflow.states import StateType

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

READ_WHOLE = (StateType.SCHEDULED, StateType.PAUSED)
"""State types whose index sort key is not when the run entered the state."""
BY_ENTRY_TIME = tuple(t for t in StateType if t not in READ_WHOLE)


@dataclass(frozen=True)
class ChangedRun:
    item: dict[str, Any]
    """The run's item, deserialized (with its state history)."""
    changed: datetime | None
    """When its current state was entered, as the index orders it: runs come latest
    first. None for the SCHEDULED and PAUSED runs, which come before, in no order (and
    for a sort key that is not a time: a worker may write its run's item)."""


def flow_runs_changed_since(
    client: DynamoDBClient, table: str, moment: datetime
) -> Iterator[ChangedRun]:
    """Every flow run whose state may have changed at or after `moment`: the SCHEDULED
    and PAUSED runs, then the others by the time their current state was entered, latest
    first (so a reader may stop early). Read lazily, page by page; an item whose key is
    not a flow run's is left out (own_keys.py)."""
    lower = moment.astimezone(UTC).isoformat()
    with OwnItems("flow run", _run_key) as own:
        for state_type in READ_WHOLE:
            for _, item in _partition(client, table, state_type, None, own):
                yield ChangedRun(item, None)
        latest_first = [_partition(client, table, t, lower, own) for t in BY_ENTRY_TIME]
        for key, item in heapq.merge(*latest_first, key=lambda pair: pair[0], reverse=True):
            yield ChangedRun(item, _time_of(key))


def _time_of(sort_key: str) -> datetime | None:
    # Items written before carry a `#<id>` tie-breaker.
    try:
        moment = datetime.fromisoformat(sort_key.split("#", 1)[0])
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _partition(
    client: DynamoDBClient, table: str, state_type: StateType, lower: str | None, own: OwnItems
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(index sort key, item) of one state type's runs, latest first."""
    index = resources.BY_STATE
    condition = "#p = :p"
    names = {"#p": index.partition_key}
    values: dict[str, Any] = {":p": to_attribute(resources.state_partition(state_type.value))}
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
