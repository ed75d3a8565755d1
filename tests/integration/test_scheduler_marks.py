"""A quiet tick (stratoflow.deployments.schedule_marks): once a schedule's slots exist, a
tick reads a page of marks per page of deployments and writes nothing; any change of a
deployment makes the next tick look at every slot again. On moto, counting the calls."""

from __future__ import annotations

import collections
from datetime import timedelta
from typing import Any

import pytest
from _deploy_fixtures import (  # noqa: F401 - `installation` is a fixture
    START,
    Installation,
    installation,
    make_deployment,
)

from stratoflow.deployments.deploy import set_deployment_paused, set_schedule_active
from stratoflow.scheduler import Scheduler

pytestmark = pytest.mark.date_sensitive

MINUTE = timedelta(minutes=1)


class Calls(collections.Counter[str]):
    """API calls of the installation's own clients, by `service.Operation`."""

    def __init__(self, found: Installation) -> None:
        super().__init__()
        backend: Any = found.services.backend
        for client in (backend.dynamodb, found.platform.queues.client):
            client.meta.events.register("provide-client-params", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self[f"{model.service_model.service_name}.{model.name}"] += 1

    def writes(self) -> dict[str, int]:
        kinds = ("Put", "Update", "Delete", "BatchWrite", "Send", "TransactWrite")
        return {k: v for k, v in self.items() if k.split(".")[1].startswith(kinds)}


def _tick(found: Installation, page_size: int = 100) -> Any:
    return Scheduler(found.platform, page_size=page_size).tick(found.clock.now())


def test_a_steady_tick_reads_marks_and_writes_nothing(installation: Installation) -> None:
    for i in range(30):  # every 5 minutes: 3 slots each in the window at 09:59
        installation.platform.deployments.put(make_deployment(f"d{i:03d}", "*/5 * * * *"))
    installation.clock.advance((START - MINUTE - installation.clock.now()).total_seconds())
    first = _tick(installation, page_size=20)
    assert first.created == 30 * 3

    calls = Calls(installation)
    steady = _tick(installation, page_size=20)

    assert (steady.created, steady.existing, steady.errors) == (0, 30 * 3, [])
    assert calls.writes() == {}
    # Per page of deployments: its query and one BatchGetItem of their marks.
    assert calls["dynamodb.BatchGetItem"] == 2
    assert calls["dynamodb.PutItem"] == 0 and calls["dynamodb.GetItem"] <= 2  # the cursor
    assert sum(calls.values()) < 20, dict(calls)

    # Five minutes later each schedule has one new slot: one run and one mark write each.
    installation.clock.advance(300)
    calls.clear()
    later = _tick(installation, page_size=20)
    assert (later.created, later.existing) == (30, 30 * 2)
    assert calls["dynamodb.PutItem"] == 30 * 2  # the run, and the mark
    assert calls["sqs.SendMessage"] == 30


def test_pausing_and_resuming_makes_the_removed_runs_again(installation: Installation) -> None:
    installation.platform.deployments.put(make_deployment("ticker", "*/5 * * * *"))
    installation.clock.advance((START - MINUTE - installation.clock.now()).total_seconds())
    assert _tick(installation).created == 3

    assert set_deployment_paused("ticker", True, platform=installation.platform) == 3
    assert _tick(installation).created == 0  # paused: nothing made
    set_deployment_paused("ticker", False, platform=installation.platform)
    report = _tick(installation)
    assert (report.created, report.existing) == (3, 0)  # the marks did not hide them


def test_a_schedule_turned_off_and_on_is_made_again(installation: Installation) -> None:
    installation.platform.deployments.put(make_deployment("ticker", "*/5 * * * *"))
    installation.clock.advance((START - MINUTE - installation.clock.now()).total_seconds())
    assert _tick(installation).created == 3
    key = installation.platform.deployments.get("ticker").schedules[0].key

    assert set_schedule_active("ticker", key, False, platform=installation.platform) == 3
    set_schedule_active("ticker", key, True, platform=installation.platform)
    assert _tick(installation).created == 3


def test_an_unreadable_mark_is_no_mark(installation: Installation) -> None:
    installation.platform.deployments.put(make_deployment("ticker", "*/5 * * * *"))
    installation.clock.advance((START - MINUTE - installation.clock.now()).total_seconds())
    assert _tick(installation).created == 3
    backend: Any = installation.services.backend
    backend.dynamodb.put_item(
        TableName=backend.table,
        Item={
            "pk": {"S": "SCHEDULEMARKS#ticker"},
            "sk": {"S": "META"},
            "marks": {"M": {"x": {"S": "garbage"}}},
        },
    )
    report = _tick(installation)
    assert (report.created, report.existing, report.errors) == (0, 3, [])  # looked at again
