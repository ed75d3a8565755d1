"""Listing flow runs from the state table's indexes.

Where a run is listed (docs/performance.md, "Run H"):
- `by_state` (`STATE#<type>`): always, by its current state's type; the sweeps and the
  scheduler read it, and so do listings by state.
- `by_time` (`FLOWRUNS#<UTC day of creation>`) and `by_deployment`
  (`DEPLOYMENT#<name>`), both by creation time: from its first final state on. A run's
  item is on every index it has keys for, and these two project ALL attributes, so
  each write of a run in them rewrote both copies: a run that is not listed there
  while it moves through Scheduled, Pending and Running costs two write units less at
  each of its writes. Items written before carry these keys from their creation; a run
  taken back out of a final state (a retry from the UI) keeps them.

So a listing by time or by deployment is the merge of that index with the runs that are
not final yet, read from `by_state` (five partitions: the active runs, a bounded set),
newest first by creation time, each run once.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from stratoflow import resources
from stratoflow.backends.aws.items import flow_run_from_item, to_attribute
from stratoflow.backends.aws.own_keys import OwnItems, string_attribute
from stratoflow.models import FlowRun
from stratoflow.states import StateType

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from stratoflow.backends.aws.result_refs import ResultRefs

LIST_LOOKBACK_DAYS = 30
ACTIVE_STATE_TYPES = (
    StateType.SCHEDULED,
    StateType.PENDING,
    StateType.RUNNING,
    StateType.PAUSED,
    StateType.CANCELLING,
)
"""The state types of runs that are not final: their runs are listed by `by_state` only."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def flow_run_own_key(item: Mapping[str, Any]) -> Mapping[str, str]:
    """The run `flow_run_from_item` reads: the one its `id` names (items written before
    ids were left out), else its partition key's, whose sort key must then be META."""
    if "id" in item:
        return resources.flow_run_key(string_attribute(item, "id"))
    pk = string_attribute(item, resources.PARTITION_KEY)
    if not pk.startswith("FLOWRUN#"):
        raise KeyError(resources.PARTITION_KEY)
    return resources.flow_run_key(pk.removeprefix("FLOWRUN#"))


def _created(run: FlowRun) -> datetime:
    created = run.created or _EPOCH
    return created if created.tzinfo is not None else created.replace(tzinfo=UTC)


def newest_first(
    indexed: Iterable[FlowRun],
    active: Iterable[FlowRun],
    *,
    limit: int | None = None,
    where: Callable[[FlowRun], bool] | None = None,
) -> list[FlowRun]:
    """Merge runs read from a creation-time index (newest first) with the active runs (any
    order): newest first by creation time, each run once (the active copy wins: the
    index may still hold a run that left a final state), at most `limit` that pass
    `where`. Stops reading `indexed` once `limit` runs are found."""
    current = {run.id: run for run in active}
    chosen: list[FlowRun] = []
    seen: set[str] = set()
    ordered_active = sorted(current.values(), key=_created, reverse=True)
    stream = heapq.merge(
        ordered_active,
        (run for run in indexed if run.id not in current),
        key=_created,
        reverse=True,
    )
    for run in stream:
        if run.id in seen:
            continue
        seen.add(run.id)
        if where is not None and not where(run):
            continue
        chosen.append(run)
        if limit is not None and len(chosen) >= limit:
            break
    return chosen


class FlowRunLists:
    """The flow-run queries of `AwsBackend` (see the module docstring)."""

    def __init__(self, dynamodb: DynamoDBClient, table: str, results: ResultRefs) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.results = results

    def by_state(
        self,
        state_type: StateType,
        *,
        until: datetime | None = None,
        limit: int | None = None,
        since: datetime | None = None,
    ) -> list[FlowRun]:
        """Runs whose current state has this type, by their `by_state` sort time
        (`items.state_sort_time`), from `since` to `until`."""
        index = resources.BY_STATE
        condition = "#p = :p"
        values: dict[str, Any] = {":p": to_attribute(resources.state_partition(state_type.value))}
        upper = f"{until.astimezone(UTC).isoformat()}#~" if until is not None else None
        lower = since.astimezone(UTC).isoformat() if since is not None else None
        if lower is not None and upper is not None:
            condition += " AND #s BETWEEN :since AND :until"
        elif upper is not None:
            condition += " AND #s <= :until"
        elif lower is not None:
            condition += " AND #s >= :since"
        if upper is not None:
            values[":until"] = to_attribute(upper)
        if lower is not None:
            values[":since"] = to_attribute(lower)
        names = {"#p": index.partition_key}
        if upper is not None or lower is not None:
            names["#s"] = index.sort_key
        return list(
            self._query(
                limit=limit,
                IndexName=index.name,
                KeyConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        )

    def active(self) -> list[FlowRun]:
        """Every run that is not final (one Query per active state type). A run that
        changed partitions under the (eventually consistent) index may show twice: the
        copy of the higher version is kept."""
        found: dict[str, FlowRun] = {}
        for state_type in ACTIVE_STATE_TYPES:
            for run in self.by_state(state_type):
                known = found.get(run.id)
                if known is None or known.version < run.version:
                    found[run.id] = run
        return list(found.values())

    def newest(
        self,
        *,
        limit: int | None = None,
        since: datetime | None = None,
        where: Callable[[FlowRun], bool] | None = None,
        today: datetime | None = None,
    ) -> list[FlowRun]:
        """Newest first by creation, over the last LIST_LOOKBACK_DAYS days (from `since`
        on): the `by_time` day partitions, newest day first, merged with the active runs."""
        lower = since.astimezone(UTC) if since is not None else None
        active = [run for run in self.active() if lower is None or _created(run) >= lower]
        return newest_first(
            self._by_day(lower, (today or datetime.now(UTC)).date()),
            active,
            limit=limit,
            where=where,
        )

    def _by_day(self, lower: datetime | None, today: Any) -> Iterator[FlowRun]:
        index = resources.BY_TIME
        days = LIST_LOOKBACK_DAYS
        if lower is not None:
            days = max(min(days, (today - lower.date()).days), 0)
        condition = "#p = :p" + (" AND #s >= :since" if lower is not None else "")
        names = {"#p": index.partition_key} | ({"#s": index.sort_key} if lower else {})
        for days_back in range(days + 1):
            day = (today - timedelta(days=days_back)).isoformat()
            values: dict[str, Any] = {":p": to_attribute(resources.flow_runs_day_partition(day))}
            if lower is not None:
                values[":since"] = to_attribute(lower.isoformat())
            yield from self._query(
                limit=None,
                IndexName=index.name,
                KeyConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ScanIndexForward=False,
            )

    def of_deployment(self, deployment_name: str, *, limit: int | None = None) -> list[FlowRun]:
        """A deployment's runs, newest first by creation: `by_deployment` merged with its
        active runs."""
        index = resources.BY_DEPLOYMENT
        indexed = self._query(
            limit=None,
            IndexName=index.name,
            KeyConditionExpression="#p = :p",
            ExpressionAttributeNames={"#p": index.partition_key},
            ExpressionAttributeValues={
                ":p": to_attribute(resources.deployment_partition(deployment_name))
            },
            ScanIndexForward=False,
        )
        active = [run for run in self.active() if run.deployment_name == deployment_name]
        return newest_first(indexed, active, limit=limit)

    def _query(self, *, limit: int | None, **query: Any) -> Iterator[FlowRun]:
        paginator = self.dynamodb.get_paginator("query")
        # The sweeps and the scheduler act on what these indexes list: an item of another
        # key carrying a run's index attributes (say a `TASKRUN#` item naming a run id)
        # must not make them move a run (own_keys.py).
        count = 0
        with OwnItems("flow run", flow_run_own_key) as own:
            for page in paginator.paginate(TableName=self.table, **query):
                for item in own(page["Items"]):
                    yield flow_run_from_item(item, self.results)
                    count += 1
                    if limit is not None and count >= limit:
                        return
