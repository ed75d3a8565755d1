"""The dashboard: what happened lately and what needs attention."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from aws_lambda_powertools.event_handler import Response

from stratoflow import runs
from stratoflow.context import get_services
from stratoflow.models import FlowRun
from stratoflow.states import StateType
from stratoflow.ui.http import new_router
from stratoflow.ui.rendering import render

router = new_router()

WINDOW = timedelta(hours=24)
RECENT_LIMIT = 500
"""Runs the dashboard reads for its counts (newest first)."""
ATTENTION = (("Failed", "FAILED"), ("Crashed", "CRASHED"), ("Late", "Late"))
"""The counts the dashboard links to a filtered list: (label, `state=` filter)."""


@dataclass(frozen=True)
class Summary:
    since: datetime
    total: int
    by_type: dict[str, int]
    attention: list[tuple[str, str, int]]
    """(label, state filter, count)."""


def summarize(recent: list[FlowRun], since: datetime) -> Summary:
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
    return Summary(since, len(recent), dict(by_type), attention)


@router.get("/")
def dashboard() -> Response[str]:
    now = get_services().clock.now()
    since = now - WINDOW
    recent = runs.query_flow_runs(since=since, limit=RECENT_LIMIT)
    return render(
        "dashboard.html",
        active="dashboard",
        summary=summarize(recent, since),
        recent=recent[:10],
        window="24h",
    )
