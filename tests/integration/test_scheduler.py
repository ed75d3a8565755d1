"""The scheduler tick against moto: which slots become runs, their SQS delays, exactly-once
under concurrent and retried ticks and redeploys, orphans, Late runs, DST, paging through
thousands of deployments, and the Lambda handler (DESIGN §1, §4)."""

from __future__ import annotations

import collections
import dataclasses
import importlib.util
import textwrap
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from _deploy_fixtures import (  # noqa: F401 - `installation` is a fixture
    START,
    Installation,
    installation,
    make_deployment,
    messages,
    on_time,
)
from pydantic import ValidationError

from stratoflow import resources
from stratoflow.deployments.deploy import deploy_project
from stratoflow.deployments.runs import flow_run_id_for, schedule_flow_run
from stratoflow.models import FlowRun
from stratoflow.orchestration.claims import claim_flow_run
from stratoflow.resources import ResourceNames, provision
from stratoflow.scheduler import Scheduler
from stratoflow.settings import get_settings
from stratoflow.states import StateType

# TTLs, schedules or time windows: also run with the clock moved (tests/timeshift.py).
pytestmark = pytest.mark.date_sensitive

HANDLER = Path(__file__).resolve().parents[2] / "functions" / "scheduler" / "handler.py"
MINUTE = timedelta(minutes=1)


def at(clock_owner: Installation, moment: datetime) -> datetime:
    """Move the fake clock to `moment` (the time the tick sends its messages at)."""
    clock_owner.clock.advance((moment - clock_owner.clock.now()).total_seconds())
    return moment


def runs_of(found: Installation, deployment: str) -> list[FlowRun]:
    return found.services.backend.list_flow_runs_of_deployment(deployment)


def starts(found: Installation, deployment: str) -> list[datetime]:
    return sorted(r.expected_start_time for r in runs_of(found, deployment))  # type: ignore[misc]


def delays_by_run(found: Installation) -> dict[str, int]:
    return {message.flow_run_id: delay for message, delay in found.sent_messages()}


# The window and the delays


def test_a_tick_creates_the_slots_from_2_minutes_ago_to_15_minutes_ahead(
    installation: Installation,
) -> None:
    installation.platform.deployments.put(make_deployment("every-minute", "* * * * *"))
    now = at(installation, START + timedelta(seconds=20.5))  # 10:00:20.5

    report = Scheduler(installation.platform).tick(now)

    # [09:58:20.5, 10:15:20.5): 09:59 ... 10:15, each once
    expected = [START - MINUTE + i * MINUTE for i in range(17)]
    assert starts(installation, "every-minute") == expected
    assert (report.created, report.enqueued, report.existing) == (17, 17, 0)
    assert (report.deployments, report.schedules, report.pages, report.complete) == (1, 1, 1, True)
    assert report.errors == []
    # Each message is delayed until its run's start (to the second, a worker's lead
    # aside); runs already due go at once.
    delays = delays_by_run(installation)
    for run in runs_of(installation, "every-minute"):
        assert run.expected_start_time is not None
        to_start = (run.expected_start_time - now).total_seconds()  # -80.5 ... 879.5
        assert on_time(delays[run.id], to_start), (to_start, delays[run.id])
    assert all(r.enqueued_at == now for r in runs_of(installation, "every-minute"))
    # SQS holds each message back until then.
    due = {r.id for r in runs_of(installation, "every-minute") if delays[r.id] == 0}
    assert len(due) == 2
    assert {m.flow_run_id for m in messages(installation.receive(after=1))} == due
    key = installation.platform.deployments.get("every-minute").schedules[0].key
    later = messages(installation.receive(after=41))
    assert [m.flow_run_id for m in later] == [
        flow_run_id_for("every-minute", f"{key}|{(START + MINUTE).isoformat()}", pool="default")
    ]


def test_the_window_includes_its_first_instant_and_excludes_its_last(
    installation: Installation,
) -> None:
    installation.platform.deployments.put(make_deployment("every-minute", "* * * * *"))

    Scheduler(installation.platform).tick(START)  # [09:58:00, 10:15:00)

    assert starts(installation, "every-minute") == [
        START - 2 * MINUTE + i * MINUTE for i in range(17)
    ]  # 09:58 (two minutes late) ... 10:14; 10:15 waits for the next tick
    delays = delays_by_run(installation)
    assert sorted(delays.values())[:3] == [0, 0, 0]  # 09:58, 09:59, 10:00
    for run in runs_of(installation, "every-minute"):
        assert run.expected_start_time is not None
        assert on_time(delays[run.id], (run.expected_start_time - START).total_seconds())


def test_a_second_or_retried_tick_creates_nothing(installation: Installation) -> None:
    installation.platform.deployments.put(make_deployment("five", "*/5 * * * *"))
    scheduler = Scheduler(installation.platform)
    first = scheduler.tick(START)
    assert first.created == 3  # 10:00, 10:05, 10:10
    ids = {r.id for r in runs_of(installation, "five")}

    retried = scheduler.tick(START)  # the same event delivered again
    again = Scheduler(installation.new_platform()).tick(START)  # another invocation

    for report in (retried, again):
        assert (report.created, report.enqueued, report.existing) == (0, 0, 3)
    assert {r.id for r in runs_of(installation, "five")} == ids
    assert len(installation.sent) == 3
    next_minute = scheduler.tick(at(installation, START + MINUTE))  # the window moves on
    assert (next_minute.created, next_minute.existing) == (1, 3)  # 10:15 is new
    assert len(runs_of(installation, "five")) == 4


def test_concurrent_ticks_create_each_slot_exactly_once(installation: Installation) -> None:
    installation.platform.deployments.put(make_deployment("contested", "*/2 * * * *"))
    schedulers = [Scheduler(installation.new_platform()) for _ in range(2)]
    backend = installation.services.backend
    for round_ in range(10):
        now = at(installation, START + round_ * 20 * MINUTE)
        barrier = threading.Barrier(len(schedulers))
        reports: list[Any] = [None] * len(schedulers)

        def tick(
            index: int,
            now: datetime = now,
            barrier: threading.Barrier = barrier,
            reports: list[Any] = reports,
        ) -> None:
            barrier.wait()  # both read the deployments, then race for every slot
            reports[index] = schedulers[index].tick(now)

        threads = [threading.Thread(target=tick, args=(i,)) for i in range(len(schedulers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert all(r.errors == [] for r in reports), [r.errors for r in reports]
        runs = runs_of(installation, "contested")
        per_key = collections.Counter(r.idempotency_key for r in runs)
        # [now - 2 min, now + 15 min) holds 9 slots of */2: each is one run, created
        # by exactly one of the two schedulers.
        assert len(per_key) == 9 and set(per_key.values()) == {1}
        assert sum(r.created for r in reports) == 9
        assert sum(r.created + r.existing for r in reports) == 18
        for run in runs:  # the next round starts from an empty table
            backend.delete_flow_run(run.id)
    assert len({m["MessageBody"] for m in installation.sent}) == 90


# Redeploying


TICKER = """
deployments:
  - name: ticker
    entrypoint: flows.py:tick
    schedules:
      - cron: "{cron}"
"""
FLOW = """
from stratoflow import flow


@flow
def tick(n: int = 1) -> int:
    return n
"""


def deploy_ticker(root: Path, cron: str, *, tags: list[str] | None = None) -> Any:
    root.mkdir(parents=True, exist_ok=True)
    config = TICKER.replace("{cron}", cron)
    if tags is not None:
        config = config.replace("    entrypoint:", f"    tags: {tags}\n    entrypoint:")
    (root / "stratoflow.yaml").write_text(textwrap.dedent(config))
    (root / "flows.py").write_text(FLOW)
    return deploy_project(root)[0]


def test_redeploying_the_same_schedule_makes_no_duplicates(
    installation: Installation, tmp_path: Path
) -> None:
    deploy_ticker(tmp_path, "*/5 * * * *")
    scheduler = Scheduler(installation.platform)
    at(installation, START - MINUTE)
    assert scheduler.tick(installation.clock.now()).created == 3
    before = {r.id: r.expected_start_time for r in runs_of(installation, "ticker")}

    result = deploy_ticker(tmp_path, "*/5 * * * *")
    report = scheduler.tick(installation.clock.now())

    # Nothing changed: the redeploy touched no run, and the tick found every slot made.
    assert (result.created, result.removed_future_runs) == (False, 0)
    assert (report.created, report.existing) == (0, 3)
    assert {r.id: r.expected_start_time for r in runs_of(installation, "ticker")} == before

    # A change (here: a tag) removes the future runs; the tick makes them again, with the
    # same ids, and their new tags.
    result = deploy_ticker(tmp_path, "*/5 * * * *", tags=["changed"])
    report = scheduler.tick(installation.clock.now())
    assert (result.created, result.removed_future_runs) == (False, 3)
    assert report.created == 3
    assert {r.id: r.expected_start_time for r in runs_of(installation, "ticker")} == before
    assert all(r.tags == ("changed",) for r in runs_of(installation, "ticker"))


def test_redeploying_a_changed_schedule_leaves_no_orphans(
    installation: Installation, tmp_path: Path
) -> None:
    deploy_ticker(tmp_path, "*/5 * * * *")
    scheduler = Scheduler(installation.platform)
    at(installation, START - MINUTE)
    scheduler.tick(installation.clock.now())
    old = {r.id for r in runs_of(installation, "ticker")}
    assert len(old) == 3

    result = deploy_ticker(tmp_path, "*/10 * * * *")
    scheduler.tick(installation.clock.now())

    runs = runs_of(installation, "ticker")
    new_key = installation.platform.deployments.get("ticker").schedules[0].key
    assert result.removed_future_runs == 3
    assert not {r.id for r in runs} & old
    assert sorted(r.expected_start_time for r in runs) == [START, START + 10 * MINUTE]  # type: ignore[type-var]
    assert {(r.idempotency_key or "").split("|")[0] for r in runs} == {new_key}
    # The messages already sent for the removed runs find nothing to claim.
    backend = installation.services.backend
    assert all(claim_flow_run(backend, run_id) is None for run_id in old)


# Orphans and Late runs


def test_a_run_created_but_never_sent_is_sent_by_the_next_tick(
    installation: Installation,
) -> None:
    deployment = make_deployment("manual", schedules=[])
    installation.platform.deployments.put(deployment)
    run, created = schedule_flow_run(  # the creator died before sending it
        installation.platform,
        deployment,
        scheduled_time=START + timedelta(seconds=120),
        idempotency_key="order-7",
    )
    assert created and run.enqueued_at is None

    report = Scheduler(installation.platform).tick(START)

    assert report.enqueued == 1
    ((message, delay),) = installation.sent_messages()
    assert message.flow_run_id == run.id and on_time(delay, 120)
    assert installation.services.backend.read_flow_run(run.id).enqueued_at == START
    assert Scheduler(installation.platform).tick(START).enqueued == 0  # sent once


def test_a_run_is_created_with_its_send_recorded_and_not_written_again(
    installation: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    installation.platform.deployments.put(make_deployment("folded", "0 * * * *"))
    backend = installation.services.backend
    updates: list[dict[str, object]] = []
    monkeypatch.setattr(backend, "update_flow_run", lambda _id, **fields: updates.append(fields))

    report = Scheduler(installation.platform).tick(at(installation, START - MINUTE))

    assert (report.created, report.enqueued) == (1, 1)
    (run,) = runs_of(installation, "folded")
    assert run.enqueued_at == START - MINUTE  # written with the run: one write, not two
    assert updates == []
    assert [m.flow_run_id for m, _ in installation.sent_messages()] == [run.id]


def test_a_run_whose_creator_died_before_sending_it_is_sent_once_it_is_late(
    installation: Installation,
) -> None:
    deployment = make_deployment("dying", schedules=[])
    installation.platform.deployments.put(deployment)
    run, created = schedule_flow_run(  # meant to be sent right after; never was
        installation.platform,
        deployment,
        scheduled_time=START + MINUTE,
        sending=True,
    )
    assert created and run.enqueued_at == START
    scheduler = Scheduler(installation.platform)
    assert scheduler.tick(START).enqueued == 0  # it looks sent until it is late

    late = scheduler.tick(at(installation, START + MINUTE + timedelta(seconds=20)))
    assert (late.late, late.enqueued) == (1, 0)
    resent = scheduler.tick(at(installation, START + 2 * MINUTE + timedelta(seconds=20)))

    assert resent.enqueued == 1
    ((message, delay),) = installation.sent_messages()
    assert message.flow_run_id == run.id and delay == 0
    assert installation.services.backend.read_flow_run(run.id).enqueued_at == (
        installation.clock.now()
    )
    assert scheduler.tick(at(installation, START + 3 * MINUTE)).enqueued == 0  # sent once
    taken = claim_flow_run(installation.services.backend, run.id, worker="w")
    assert taken is not None


def test_a_deployment_whose_queue_is_gone_does_not_stop_the_tick(
    installation: Installation,
) -> None:
    # Listed first (by name): it used to end every tick before the others were reached.
    installation.platform.deployments.put(make_deployment("a-gone", "0 * * * *", work_pool="gone"))
    installation.platform.deployments.put(make_deployment("b-fine", "0 * * * *"))
    scheduler = Scheduler(installation.platform)

    report = scheduler.tick(at(installation, START - MINUTE))

    (unsent,) = runs_of(installation, "a-gone")
    assert report.errors == [
        f"a-gone: flow run {unsent.id} not sent: UnknownWorkQueue: The SQS queue "
        "'stratoflow-gone-default' does not exist. Create the work queue (cdk deploy, or "
        "stratoflow.resources.provision for the emulator)."
    ]
    assert [m.deployment for m, _ in installation.sent_messages()] == ["b-fine"]
    # Once the queue exists again, the next tick sends the run it could not send.
    names = ResourceNames.from_settings(get_settings())
    provision(installation.session, dataclasses.replace(names, work_queues=(("gone", "default"),)))
    again = scheduler.tick(installation.clock.now())
    assert (again.errors, again.enqueued) == ([], 1)
    ((message, delay),) = installation.sent_messages()[1:]
    assert message.flow_run_id == unsent.id and on_time(delay, 60)


def test_an_unclaimed_run_is_late_15_seconds_after_its_start_and_still_claimable(
    installation: Installation,
) -> None:
    for name in ("unclaimed", "claimed"):
        installation.platform.deployments.put(make_deployment(name, "0 * * * *"))
    scheduler = Scheduler(installation.platform)
    scheduler.tick(at(installation, START - MINUTE))
    (unclaimed,) = runs_of(installation, "unclaimed")
    (claimed,) = runs_of(installation, "claimed")
    backend = installation.services.backend
    at(installation, START + timedelta(seconds=5))
    assert claim_flow_run(backend, claimed.id, worker="w1") is not None

    on_time = scheduler.tick(at(installation, START + timedelta(seconds=14)))
    late = scheduler.tick(at(installation, START + timedelta(seconds=15)))

    assert (on_time.late, late.late) == (0, 1)
    state = backend.read_flow_run(unclaimed.id).state
    assert state is not None
    assert (state.type, state.name) == (StateType.SCHEDULED, "Late")
    assert state.message == (
        "Not picked up by a worker within 15 s of its start; is a worker polling work queue "
        "default/default?"
    )
    assert state.details["scheduled_time"] == START.isoformat()
    claimed_state = backend.read_flow_run(claimed.id).state
    assert claimed_state is not None and claimed_state.type is StateType.PENDING
    # Later ticks neither mark it again nor touch the claimed run.
    assert scheduler.tick(at(installation, START + MINUTE)).late == 0
    claimed_state = backend.read_flow_run(claimed.id).state
    assert claimed_state is not None and claimed_state.type is StateType.PENDING
    # A Late run is still a Scheduled run: a worker can claim it.
    taken = claim_flow_run(backend, unclaimed.id, worker="w2")
    assert taken is not None and taken.state is not None
    assert taken.state.type is StateType.PENDING


# Daylight saving time


@pytest.mark.parametrize(
    ("cron", "day", "expected"),
    [
        # Spring forward: 02:30 does not exist; it runs at 03:30 EDT.
        ("30 2 * * *", datetime(2026, 3, 8), datetime(2026, 3, 8, 7, 30, tzinfo=UTC)),
        # Fall back: 01:30 happens twice; it runs at the first, 01:30 EDT.
        ("30 1 * * *", datetime(2026, 11, 1), datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
    ],
    ids=["spring-forward", "fall-back"],
)
def test_a_daily_schedule_runs_once_on_a_dst_change_day(
    installation: Installation, cron: str, day: datetime, expected: datetime
) -> None:
    tz = ZoneInfo("America/New_York")
    installation.platform.deployments.put(
        make_deployment("daily", schedules=[{"cron": cron, "timezone": "America/New_York"}])
    )
    scheduler = Scheduler(installation.platform)
    start = day.replace(tzinfo=tz).astimezone(UTC)
    end = (day + timedelta(days=1)).replace(tzinfo=tz).astimezone(UTC)
    now = start
    while now < end:  # a tick every 15 minutes covers every slot: [now - 2, now + 15)
        report = scheduler.tick(at(installation, now))
        assert report.errors == []
        now += timedelta(minutes=15)

    assert starts(installation, "daily") == [expected]


# Thousands of deployments


def put_deployments(found: Installation, count: int, cron_of: Callable[[int], str]) -> None:
    for i in range(count):
        found.platform.deployments.put(make_deployment(f"bulk-{i:05d}", cron_of(i)))


def count_scheduled(found: Installation) -> int:
    """Scheduled runs in the table, counted by DynamoDB (no item is read back): the runs
    that are not final are in one `by_state` partition, told apart by `state_type`."""
    index = resources.BY_STATE
    pages = (
        found.session.client("dynamodb")
        .get_paginator("query")
        .paginate(
            TableName=get_settings().table_name,
            IndexName=index.name,
            KeyConditionExpression="#p = :p",
            FilterExpression="#t = :t",
            ExpressionAttributeNames={"#p": index.partition_key, "#t": "state_type"},
            ExpressionAttributeValues={
                ":p": {"S": resources.ACTIVE_RUNS_PARTITION},
                ":t": {"S": "SCHEDULED"},
            },
            Select="COUNT",
        )
    )
    return sum(int(page["Count"]) for page in pages)


@pytest.mark.slow
def test_one_tick_pages_through_2000_deployments(installation: Installation) -> None:
    # Every 20th deployment (five on each page of 100) has runs due every 5 minutes; the
    # others run daily at 03:00, nothing due now. Creating a run costs three AWS calls
    # (moto in-process: several ms each), so 2,000 deployments x 3 due slots would take
    # minutes here; bench/scheduler.py measures 2,000 created runs against the emulator.
    put_deployments(installation, 2000, lambda i: "*/5 * * * *" if i % 20 == 0 else "0 3 * * *")

    report = Scheduler(installation.platform).tick(START)

    assert report.errors == []
    assert (report.deployments, report.schedules, report.pages, report.complete) == (
        2000,
        2000,
        20,
        True,
    )
    assert (report.created, report.enqueued) == (300, 300)  # 10:00, 10:05, 10:10 each
    sent = collections.Counter(m.deployment for m, _ in installation.sent_messages())
    assert sent == {f"bulk-{i:05d}": 3 for i in range(0, 2000, 20)}
    assert count_scheduled(installation) == 300


def test_a_tick_that_runs_out_of_time_stops_and_the_next_one_finishes(
    installation: Installation,
) -> None:
    put_deployments(installation, 60, lambda _: "0 * * * *")  # one slot: 10:00
    now = at(installation, START - 10 * MINUTE)
    left = iter([60.0, 5.0])  # seconds left after each page: the second is too few

    partial = Scheduler(installation.platform, page_size=25).tick(now, time_left=lambda: next(left))
    rest = Scheduler(installation.platform, page_size=25).tick(now)

    assert (partial.complete, partial.pages, partial.deployments, partial.created) == (
        False,
        2,
        50,
        50,
    )
    # The next tick resumes at the third page, where the first stopped, not at page 1.
    assert (rest.complete, rest.pages, rest.deployments) == (True, 1, 10)
    assert (rest.created, rest.existing) == (10, 0)
    assert count_scheduled(installation) == 60
    # ...and the one after that starts at page 1 again, where every slot is marked made.
    again = Scheduler(installation.platform, page_size=25).tick(now)
    assert (again.complete, again.pages, again.deployments) == (True, 3, 60)
    assert (again.created, again.existing) == (0, 60)


# The Lambda handler


class FakeLambdaContext:
    function_name = "stratoflow-scheduler"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:stratoflow-scheduler"
    memory_limit_in_mb = 512
    aws_request_id = "6f6f1c5e-2b1e-4d3b-9a43-2f0d3c1f5a10"
    log_group_name = "/aws/lambda/stratoflow-scheduler"
    log_stream_name = "2026/11/21/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 55_000


SCHEDULED_EVENT = {
    "version": "0",
    "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": f"{START:%Y-%m-%dT%H:%M:%SZ}",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/stratoflow-scheduler"],
    "detail": {},
}


def load_handler() -> Any:
    spec = importlib.util.spec_from_file_location("stratoflow_scheduler_handler", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def test_the_lambda_handler_ticks_on_an_eventbridge_event(installation: Installation) -> None:
    installation.platform.deployments.put(make_deployment("five", "*/5 * * * *"))
    handler = load_handler()

    report = handler(SCHEDULED_EVENT, FakeLambdaContext())

    assert report["created"] == 3
    assert (report["deployments"], report["complete"], report["errors"]) == (1, True, [])
    assert len(installation.sent) == 3
    with pytest.raises(ValidationError):
        handler({"detail-type": "Scheduled Event", "source": "aws.events"}, FakeLambdaContext())
    assert len(runs_of(installation, "five")) == 3
