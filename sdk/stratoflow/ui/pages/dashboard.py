"""The dashboard: runs over time by state, what needs attention (failed, crashed, late),
upcoming scheduled runs, work pools with their live workers and queue depths, and the
automations that fired lately."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response

from stratoflow import runs
from stratoflow.models import FlowRun
from stratoflow.platform import Platform, get_platform
from stratoflow.states import StateType
from stratoflow.ui.http import new_router, query_value
from stratoflow.ui.pages.work_pools import queue_depth
from stratoflow.ui.rendering import render
from stratoflow.workers.queues import QueueDepth
from stratoflow.workers.registry import WorkerInfo, list_workers

if TYPE_CHECKING:
    from stratoflow.automations.base import AutomationRecord

router = new_router()

WINDOWS = {
    "24h": (timedelta(hours=24), timedelta(hours=1)),
    "7d": (timedelta(days=7), timedelta(days=1)),
}
"""The chart's windows: (span, bar width)."""
DEFAULT_WINDOW = "24h"
RECENT_LIMIT = 2000
"""Runs the dashboard reads for its counts and chart (newest first)."""
ATTENTION = (("Failed", "FAILED"), ("Crashed", "CRASHED"), ("Late", "Late"))
"""The counts linked to a filtered list: (label, the list's `state=` filter)."""
CHART_STATES = tuple(StateType)
UPCOMING_LIMIT = 10
FIRINGS_LIMIT = 8


@dataclass(frozen=True)
class Summary:
    total: int
    attention: list[tuple[str, str, int]]
    """(label, state filter, count)."""
    truncated: bool
    """More runs than RECENT_LIMIT in the window: counts are of the newest ones."""


def summarize(recent: list[FlowRun]) -> Summary:
    by_type: Counter[str] = Counter()
    by_name: Counter[str] = Counter()
    for run in recent:
        if run.state is not None:
            by_type[run.state.type.value] += 1
            by_name[run.state.name] += 1
    attention = [
        (label, state, by_type[state] if state in StateType.__members__ else by_name[state])
        for label, state in ATTENTION
    ]
    return Summary(len(recent), attention, len(recent) >= RECENT_LIMIT)


def runs_over_time(
    recent: list[FlowRun], now: datetime, span: timedelta, width: timedelta
) -> dict[str, Any]:
    """Bars of `width` over the last `span`, each split by state type (the chart's JSON)."""
    count = int(span / width)
    start = now - width * count
    labels = []
    for index in range(count):
        bar_start = start + width * index
        labels.append(f"{bar_start:%H:%M}" if width < timedelta(days=1) else f"{bar_start:%b %d}")
    counts = {state.value: [0] * count for state in CHART_STATES}
    for run in recent:
        moment = run.start_time or run.expected_start_time or run.created
        if run.state is None or moment is None or moment < start or moment > now:
            continue
        index = min(int((moment - start) / width), count - 1)
        counts[run.state.type.value][index] += 1
    datasets = [
        {"state_type": state, "counts": values} for state, values in counts.items() if any(values)
    ]
    return {"labels": labels, "datasets": datasets}


@dataclass(frozen=True)
class QueueRow:
    name: str
    paused: bool
    depth: QueueDepth | None
    """None: its SQS queue does not exist."""


@dataclass(frozen=True)
class PoolRow:
    name: str
    type: str
    queues: list[QueueRow]
    workers: list[WorkerInfo]

    @property
    def alive(self) -> int:
        return sum(1 for worker in self.workers if worker.alive)


def pool_rows(platform: Platform) -> list[PoolRow]:
    """Each work pool with its queues' SQS depths and its live workers."""
    workers = list_workers(platform)
    rows = []
    for pool in platform.work_pools.list():
        queues = []
        for queue in pool.by_priority():
            depth = queue_depth(platform, pool.name, queue.name)
            queues.append(QueueRow(queue.name, queue.paused, depth))
        rows.append(
            PoolRow(pool.name, pool.type, queues, [w for w in workers if w.pool == pool.name])
        )
    return rows


def recent_firings(platform: Platform, since: datetime) -> list[AutomationRecord]:
    """Automations that fired since `since`, latest first."""
    # On use: the automations' models and loaders cost ~50 ms of the Lambda's cold start.
    from stratoflow.automations.api import automation_store

    fired = [
        record
        for record in automation_store(platform).list()
        if record.last_fired is not None and record.last_fired >= since
    ]
    fired.sort(key=lambda record: record.last_fired or since, reverse=True)
    return fired[:FIRINGS_LIMIT]


@router.get("/")
def dashboard() -> Response[str]:
    platform = get_platform()
    now = platform.services.clock.now()
    window = query_value(router.current_event, "window") or DEFAULT_WINDOW
    window = window if window in WINDOWS else DEFAULT_WINDOW
    span, width = WINDOWS[window]
    recent = runs.query_flow_runs(since=now - span, limit=RECENT_LIMIT)
    return render(
        "dashboard.html",
        active="dashboard",
        window=window,
        windows=list(WINDOWS),
        summary=summarize(recent),
        chart=runs_over_time(recent, now, span, width),
        upcoming=runs.read_upcoming_flow_runs(after=now, limit=UPCOMING_LIMIT),
        pools=pool_rows(platform),
        firings=recent_firings(platform, now - span),
        recent=recent[:10],
    )
