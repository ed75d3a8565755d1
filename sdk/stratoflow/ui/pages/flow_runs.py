"""Flow runs: the filtered, paged list, auto-refreshed by htmx (one run's page:
flow_run.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.event_handler import Response

from stratoflow import runs
from stratoflow.context import get_services
from stratoflow.models import FlowRun
from stratoflow.ui.http import new_router, query_value, with_query
from stratoflow.ui.rendering import render

router = new_router()

PAGE_SIZE = 50
WINDOWS: dict[str, timedelta | None] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "all": None,
}
DEFAULT_WINDOW = "7d"
STATE_CHOICES = (
    "SCHEDULED",
    "Late",
    "PENDING",
    "RUNNING",
    "PAUSED",
    "CANCELLING",
    "COMPLETED",
    "FAILED",
    "CRASHED",
    "CANCELLED",
)


@dataclass(frozen=True)
class RunFilter:
    """The list's filters, from the query string (each optional)."""

    state: str | None = None
    deployment: str | None = None
    flow: str | None = None
    tag: str | None = None
    work_pool: str | None = None
    window: str = DEFAULT_WINDOW
    page: int = 1

    @classmethod
    def from_query(cls, get: Callable[[str], str | None]) -> RunFilter:
        window = get("window") or DEFAULT_WINDOW
        page = get("page") or "1"
        return cls(
            state=get("state"),
            deployment=get("deployment"),
            flow=get("flow"),
            tag=get("tag"),
            work_pool=get("work_pool"),
            window=window if window in WINDOWS else DEFAULT_WINDOW,
            page=max(int(page), 1) if page.isdigit() else 1,
        )

    def since(self, now: datetime) -> datetime | None:
        span = WINDOWS[self.window]
        return now - span if span is not None else None

    def matches(self, run: FlowRun) -> bool:
        """The filters `query_flow_runs` has no index for."""
        return (
            (self.flow is None or run.flow_name == self.flow)
            and (self.tag is None or self.tag in run.tags)
            and (self.work_pool is None or run.work_pool_name == self.work_pool)
        )

    def query(self, **changes: str | int | None) -> dict[str, str | None]:
        values: dict[str, Any] = {
            "state": self.state,
            "deployment": self.deployment,
            "flow": self.flow,
            "tag": self.tag,
            "work_pool": self.work_pool,
            "window": self.window,
            "page": self.page,
            **changes,
        }
        return {k: None if v is None else str(v) for k, v in values.items()}

    def url(self, **changes: str | int | None) -> str:
        return with_query("/flow-runs", self.query(**changes))


def find_runs(where: RunFilter, now: datetime) -> tuple[list[FlowRun], bool]:
    """One page of runs matching `where`, newest first, and whether more follow."""
    found = runs.query_flow_runs(
        state=where.state,
        deployment=where.deployment,
        since=where.since(now),
        limit=where.page * PAGE_SIZE + 1,
        where=where.matches,
    )
    start = (where.page - 1) * PAGE_SIZE
    return found[start : start + PAGE_SIZE], len(found) > start + PAGE_SIZE


@router.get("/flow-runs")
def list_flow_runs() -> Response[str]:
    event = router.current_event
    where = RunFilter.from_query(lambda name: query_value(event, name))
    found, more = find_runs(where, get_services().clock.now())
    context: dict[str, Any] = {
        "runs": found,
        "where": where,
        "more": more,
        "windows": list(WINDOWS),
        "states": STATE_CHOICES,
        "refresh_url": where.url(fragment="rows"),
    }
    if query_value(event, "fragment") == "rows":
        return render("flow_runs/_rows.html", **context)
    return render("flow_runs/list.html", active="flow-runs", **context)
