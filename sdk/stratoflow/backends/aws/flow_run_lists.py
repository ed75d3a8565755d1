"""Listing flow runs from the state table's indexes.

Where a run is listed (items.state_index_keys; docs/aws-backend.md):
- `by_state`: while it is not final, in `STATE#ACTIVE` (sort key: its creation time, so
  that its transitions rewrite the entry in place); once final, in `STATE#<type>` by
  the time of that state.
- `by_time` (`FLOWRUNS#<UTC day of creation>`) and `by_deployment`
  (`DEPLOYMENT#<name>`), both by creation time: from its first final state on. Each
  index projects ALL attributes, so each write of a run there rewrote both copies.

So the runs of an active state type are the `STATE#ACTIVE` partition filtered and
ordered here (plus the `STATE#<type>` partitions of active types, where runs written
before this layout are); and a listing by time or by deployment is the merge of its
index with the active runs, newest first by creation time, each run once. The active
runs are a bounded set (what is scheduled within the scheduler's window, running,
paused); within `snapshot()` (the scheduler's tick) they are read once.
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from stratoflow import resources
from stratoflow.backends.aws.items import flow_run_from_item, to_attribute
from stratoflow.backends.aws.own_keys import OwnItems, string_attribute
from stratoflow.models import FlowRun
from stratoflow.orchestration.ordering import in_window, state_sort_moment
from stratoflow.states import StateType

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from stratoflow.backends.aws.result_refs import ResultRefs

logger = logging.getLogger(__name__)

LIST_LOOKBACK_DAYS = 30
ACTIVE_STATE_TYPES = (
    StateType.SCHEDULED,
    StateType.PENDING,
    StateType.RUNNING,
    StateType.PAUSED,
    StateType.CANCELLING,
)
"""The state types of runs that are not final: their runs are listed by `by_state` only."""
LATEST = (resources.ACTIVE_RUNS_PARTITION,)
EARLIER = tuple(resources.state_partition(t.value) for t in ACTIVE_STATE_TYPES)
"""Where runs written before `STATE#ACTIVE` existed are while they are not final."""

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


def _readable(item: Mapping[str, Any], results: ResultRefs) -> FlowRun | None:
    """The run an item holds; None, with a warning, for one that is not a run's item as
    this version writes them. A worker writes its run's item: a garbled one must not stop
    a listing, nor the scheduler's passes over every other run."""
    try:
        return flow_run_from_item(item, results)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        key = item.get(resources.PARTITION_KEY, {}).get("S")
        logger.warning(
            "Flow run item %s left out: not readable (%s: %s)", key, type(exc).__name__, exc
        )
        return None


def _sort_moment(run: FlowRun) -> list[datetime]:
    """The run's order among the runs of its state type; none for an item whose times
    cannot be read. A worker writes its run's item, and a `scheduled_time` or
    `pause_timeout` that is not a time must not stop the scheduler's passes over every
    other run: that run is left out, with a warning (when the index sorted the runs, its
    writer computed the key, and a bad one only misplaced the run)."""
    assert run.state is not None
    try:
        return [state_sort_moment(run, run.state)]
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:
        logger.warning("Flow run %s left out of its state's listing: %s", run.id, exc)
        return []


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
        self._local = threading.local()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Within it, this thread reads the active runs at most once, when first asked:
        the scheduler's tick, whose passes all read them and tolerate a view a few
        seconds old (their writes are conditional on the version they read), and a UI
        page, whose panels show one moment."""
        if getattr(self._local, "in_snapshot", False):
            yield  # nested: the outer snapshot holds
            return
        self._local.in_snapshot = True
        self._local.held = {}
        try:
            yield
        finally:
            self._local.in_snapshot = False
            self._local.held = {}

    def by_state(
        self,
        state_type: StateType,
        *,
        until: datetime | None = None,
        limit: int | None = None,
        since: datetime | None = None,
    ) -> list[FlowRun]:
        """Runs whose current state has this type, oldest first by
        `ordering.state_sort_moment`, from `since` to `until`."""
        if state_type in ACTIVE_STATE_TYPES:
            keyed = sorted(
                (
                    (moment, run)
                    for run in self.active()
                    if run.state is not None and run.state.type is state_type
                    for moment in _sort_moment(run)
                ),
                key=lambda pair: pair[0],
            )
            chosen = [run for moment, run in keyed if in_window(moment, since, until)]
            return chosen[:limit] if limit is not None else chosen
        return self._in_partition(
            resources.state_partition(state_type.value), until=until, since=since, limit=limit
        )

    def _in_partition(
        self,
        partition: str,
        *,
        until: datetime | None = None,
        limit: int | None = None,
        since: datetime | None = None,
    ) -> list[FlowRun]:
        index = resources.BY_STATE
        condition = "#p = :p"
        values: dict[str, Any] = {":p": to_attribute(partition)}
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
        """Every run that is not final: `STATE#ACTIVE`, and the active types'
        `STATE#<type>` partitions, where runs written before that partition existed are
        until their next transition moves them. A run that moved under the (eventually
        consistent) index may show twice: the copy of the higher version is kept, and a
        copy no longer active is dropped."""
        found: dict[str, FlowRun] = {}
        for run in [*self._held(LATEST), *self._held(EARLIER)]:
            known = found.get(run.id)
            if known is None or known.version < run.version:
                found[run.id] = run
        return [run for run in found.values() if run.state is None or not run.state.is_final()]

    def _listed_active(self) -> list[FlowRun]:
        """The runs a listing by time or deployment adds to its index: `STATE#ACTIVE`'s
        only. Runs of the earlier layout are on `by_time` and `by_deployment` from their
        creation, so those indexes list them already."""
        return [r for r in self._held(LATEST) if r.state is None or not r.state.is_final()]

    def _held(self, partitions: tuple[str, ...]) -> list[FlowRun]:
        """The runs of these `by_state` partitions: read now, or once per snapshot."""
        if not getattr(self._local, "in_snapshot", False):
            return self._read(partitions)
        held: dict[tuple[str, ...], list[FlowRun]] = self._local.held
        if partitions not in held:
            held[partitions] = self._read(partitions)
        return list(held[partitions])

    def _read(self, partitions: tuple[str, ...]) -> list[FlowRun]:
        return [run for partition in partitions for run in self._in_partition(partition)]

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
        active = [r for r in self._listed_active() if lower is None or _created(r) >= lower]
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
        active = [r for r in self._listed_active() if r.deployment_name == deployment_name]
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
                    run = _readable(item, self.results)
                    if run is None:
                        continue
                    yield run
                    count += 1
                    if limit is not None and count >= limit:
                        return
