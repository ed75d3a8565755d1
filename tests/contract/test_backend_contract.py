"""The backend contract: one suite, run against the memory backend and the AWS backend.

Every test takes the `services` fixture (ids "memory" and "aws"). `make_peer()` gives
another client of the same store: on AWS a separately built backend (another worker,
reading from DynamoDB, S3 and CloudWatch Logs), on memory the same services.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from stratoflow import flow, get_run_logger, runs, task
from stratoflow.backends.aws import AwsBackend, S3ResultStore
from stratoflow.backends.aws.items import from_item
from stratoflow.cache import CacheEntry
from stratoflow.context import Services
from stratoflow.exceptions import ConflictError, InvalidTransitionError, ObjectNotFound
from stratoflow.models import STATE_HISTORY_LIMIT, FlowRun, LogEntry, TaskRun
from stratoflow.resources import RESULTS_PREFIX, TTL_ATTRIBUTE, log_stream_name
from stratoflow.results import ResultRecord, cache_result_key, persist, stable_hash
from stratoflow.settings import load_settings
from stratoflow.states import (
    Cancelled,
    Cancelling,
    Completed,
    Crashed,
    Failed,
    Pending,
    Running,
    Scheduled,
    State,
    StateType,
)

Peer = Callable[[], Services]


def new_flow_run(*, created: datetime | None = None, **fields: Any) -> FlowRun:
    run_id = fields.pop("id", None) or str(uuid.uuid4())
    return FlowRun(
        id=run_id,
        name=fields.pop("name", f"run-{run_id[:8]}"),
        flow_name=fields.pop("flow_name", "contract"),
        created=created or datetime.now(UTC),
        **fields,
    )


def new_task_run(
    flow_run_id: str | None, name: str, *, created: datetime | None = None, **fields: Any
) -> TaskRun:
    return TaskRun(
        id=str(uuid.uuid4()),
        name=name,
        task_key=f"{name}-key",
        dynamic_key="0",
        task_name=name,
        flow_run_id=flow_run_id,
        created=created or datetime.now(UTC),
        **fields,
    )


def created_run(services: Services, **fields: Any) -> FlowRun:
    return services.backend.create_flow_run(new_flow_run(**fields))


# Flow runs


def test_flow_run_round_trip(services: Services, make_peer: Peer) -> None:
    created = datetime.now(UTC).replace(microsecond=123456)
    run = new_flow_run(
        created=created,
        flow_version="1.2",
        parameters={"n": 3, "names": ["a", "b"], "nested": {"ok": True, "none": None}},
        tags=("etl", "nightly"),
        parent_flow_run_id="parent-flow",
        parent_task_run_id="parent-task",
        deployment_name="etl/nightly",
        work_queue_name="default",
        idempotency_key="nightly-2026-11-21",
    )
    assert services.backend.create_flow_run(run) is run

    read = make_peer().backend.read_flow_run(run.id)
    assert (read.id, read.name, read.flow_name, read.flow_version) == (
        run.id,
        run.name,
        "contract",
        "1.2",
    )
    assert read.parameters == run.parameters
    assert read.tags == ("etl", "nightly")
    assert (read.parent_flow_run_id, read.parent_task_run_id) == ("parent-flow", "parent-task")
    assert (read.deployment_name, read.work_queue_name, read.idempotency_key) == (
        "etl/nightly",
        "default",
        "nightly-2026-11-21",
    )
    assert read.created == created
    assert (read.state, read.state_history, read.version) == (None, [], 0)


def test_unknown_flow_run_is_not_found(services: Services) -> None:
    backend = services.backend
    with pytest.raises(ObjectNotFound, match="no-such-run"):
        backend.read_flow_run("no-such-run")
    with pytest.raises(ObjectNotFound, match="no-such-run"):
        backend.set_flow_run_state("no-such-run", Pending())


def test_list_flow_runs_newest_first_with_limit(services: Services) -> None:
    now = datetime.now(UTC)
    moments = [now - timedelta(days=3), *(now - timedelta(minutes=m) for m in (40, 30, 20, 10))]
    ids = [created_run(services, created=moment).id for moment in moments]

    assert [r.id for r in services.backend.list_flow_runs()] == ids[::-1]
    assert [r.id for r in services.backend.list_flow_runs(limit=2)] == ids[:-3:-1]
    assert services.backend.list_flow_runs(limit=1)[0].created == moments[-1]


def test_list_flow_runs_from_a_time_and_by_a_test(services: Services) -> None:
    now = datetime.now(UTC)
    moments = [now - timedelta(days=3), *(now - timedelta(minutes=m) for m in (40, 30, 20, 10))]
    ids = [created_run(services, created=moment).id for moment in moments]
    backend = services.backend

    since = now - timedelta(minutes=30)
    assert [r.id for r in backend.list_flow_runs(since=since)] == ids[:1:-1]
    assert [r.id for r in backend.list_flow_runs(since=now - timedelta(days=4))] == ids[::-1]
    assert backend.list_flow_runs(since=now + timedelta(days=1)) == []
    picked = {ids[0], ids[2]}
    assert [r.id for r in backend.list_flow_runs(where=lambda r: r.id in picked)] == [
        ids[2],
        ids[0],
    ]
    assert [r.id for r in backend.list_flow_runs(where=lambda r: r.id in picked, limit=1)] == [
        ids[2]
    ]


def test_list_flow_runs_orders_by_instant_whatever_the_utc_offset(services: Services) -> None:
    now = datetime.now(UTC)
    west, east = timezone(timedelta(hours=-8)), timezone(timedelta(hours=9))
    moments = [
        (now - timedelta(hours=3)).astimezone(east),
        now - timedelta(hours=2),
        (now - timedelta(hours=1)).astimezone(west),
    ]
    ids = [created_run(services, created=moment).id for moment in moments]

    listed = services.backend.list_flow_runs()
    assert [r.id for r in listed] == ids[::-1]
    assert [r.created for r in listed] == moments[::-1]


def test_transitions_follow_the_table_and_bump_the_version(
    services: Services, make_peer: Peer
) -> None:
    backend = services.backend
    run = created_run(services)
    versions = []
    for state in (Scheduled(), Pending(), Running(), Completed()):
        result = backend.set_flow_run_state(run.id, state)
        assert result.applied
        assert result.state is state
        versions.append(result.version)
    assert versions == [1, 2, 3, 4]

    stored = make_peer().backend.read_flow_run(run.id)
    assert stored.version == 4
    assert stored.state_type == "COMPLETED"
    assert [s.name for s in stored.state_history] == ["Scheduled", "Pending", "Running"]


def test_a_transition_the_table_forbids_is_refused(services: Services) -> None:
    run = created_run(services)
    services.backend.set_flow_run_state(run.id, Scheduled())
    with pytest.raises(InvalidTransitionError, match="cannot go from 'Scheduled'"):
        services.backend.set_flow_run_state(run.id, Completed())
    stored = services.backend.read_flow_run(run.id)
    assert (stored.state_name, stored.version) == ("Scheduled", 1)


@pytest.mark.parametrize("final", [Completed, Failed, Cancelled, Crashed], ids=lambda f: f.__name__)
def test_final_states_stay_final_unless_forced(
    services: Services, make_peer: Peer, final: Callable[..., State]
) -> None:
    backend = services.backend
    run = created_run(services)
    backend.set_flow_run_state(run.id, Running())
    backend.set_flow_run_state(run.id, final("the end"))
    for proposed in (Running(), Scheduled(), Completed(), Cancelling()):
        with pytest.raises(InvalidTransitionError, match="a final state"):
            backend.set_flow_run_state(run.id, proposed)
        with pytest.raises(InvalidTransitionError):
            make_peer().backend.set_flow_run_state(run.id, proposed)
    stored = make_peer().backend.read_flow_run(run.id)
    assert (stored.state_name, stored.version) == (final.__name__, 2)

    forced = backend.set_flow_run_state(run.id, Scheduled("rerun"), force=True)
    assert (forced.applied, forced.version) == (True, 3)
    stored = make_peer().backend.read_flow_run(run.id)
    assert (stored.state_name, stored.state.message if stored.state else None) == (
        "Scheduled",
        "rerun",
    )


def test_expected_version_mismatch_is_a_conflict(services: Services, make_peer: Peer) -> None:
    backend = services.backend
    run = created_run(services)
    backend.set_flow_run_state(run.id, Pending())
    with pytest.raises(ConflictError, match=run.id):
        backend.set_flow_run_state(run.id, Running(), expected_version=0)
    with pytest.raises(ConflictError, match=run.id):
        make_peer().backend.set_flow_run_state(run.id, Running(), expected_version=5)
    stored = make_peer().backend.read_flow_run(run.id)
    assert (stored.state_name, stored.version) == ("Pending", 1)

    result = backend.set_flow_run_state(run.id, Running(), expected_version=1)
    assert (result.applied, result.version) == (True, 2)


def test_expected_version_is_checked_against_the_stored_run(
    services: Services, make_peer: Peer
) -> None:
    """A client that read the latest version may transition with it, even through a
    backend that changed (and still holds) the run earlier."""
    backend = services.backend
    run = created_run(services)
    backend.set_flow_run_state(run.id, Pending())
    make_peer().backend.set_flow_run_state(run.id, Running("elsewhere"))

    latest = backend.read_flow_run(run.id)
    assert latest.version == 2
    result = backend.set_flow_run_state(run.id, Completed(), expected_version=latest.version)
    assert (result.applied, result.version) == (True, 3)
    stored = make_peer().backend.read_flow_run(run.id)
    assert [s.name for s in stored.state_history] == ["Pending", "Running"]


def test_a_transition_id_is_applied_once(services: Services, make_peer: Peer) -> None:
    backend = services.backend
    run = created_run(services)
    first = backend.set_flow_run_state(run.id, Pending("first"), transition_id="tx-1")
    again = backend.set_flow_run_state(run.id, Pending("again"), transition_id="tx-1")
    assert (first.applied, first.version) == (True, 1)
    assert (again.applied, again.version) == (False, 1)
    assert again.state.message == "first"

    # Also from another client, and after a later transition (a retried request).
    backend.set_flow_run_state(run.id, Running(), transition_id="tx-2")
    replay = make_peer().backend.set_flow_run_state(run.id, Pending(), transition_id="tx-1")
    assert (replay.applied, replay.version) == (False, 2)
    stored = make_peer().backend.read_flow_run(run.id)
    assert (stored.state_name, stored.version) == ("Running", 2)
    assert [s.message for s in stored.state_history] == ["first"]


def test_state_history_is_bounded_and_ordered(services: Services, make_peer: Peer) -> None:
    backend = services.backend
    run = created_run(services)
    backend.set_flow_run_state(run.id, Pending())
    total = STATE_HISTORY_LIMIT + 5
    for i in range(total):
        result = backend.set_flow_run_state(run.id, Running(name=f"Running-{i}"))
        assert result.version == i + 2

    stored = make_peer().backend.read_flow_run(run.id)
    assert stored.version == total + 1
    assert stored.state_name == f"Running-{total - 1}"
    assert len(stored.state_history) == STATE_HISTORY_LIMIT
    expected = [f"Running-{i}" for i in range(total - 1 - STATE_HISTORY_LIMIT, total - 1)]
    assert [s.name for s in stored.state_history] == expected
    stamps = [s.timestamp for s in stored.state_history]
    assert stamps == sorted(stamps)


def test_a_state_survives_a_read_back(services: Services, make_peer: Peer) -> None:
    run = created_run(services)
    moment = datetime(2026, 11, 21, 9, 30, 15, 654321, tzinfo=UTC)
    state = State(
        type=StateType.FAILED,
        name="TimedOut",
        message="took too long: 5 s — über",
        timestamp=moment,
        details={"flow_run_id": run.id, "attempt": 2},
    )
    services.backend.set_flow_run_state(run.id, Running())
    services.backend.set_flow_run_state(run.id, state)

    stored = make_peer().backend.read_flow_run(run.id)
    assert stored.state is not None
    read = stored.state
    assert (read.type, read.name, read.message, read.timestamp) == (
        StateType.FAILED,
        "TimedOut",
        "took too long: 5 s — über",
        moment,
    )
    assert read.details == {"flow_run_id": run.id, "attempt": 2}
    assert stored.state_history[0].type is StateType.RUNNING


CLAIMERS = 16
ROUNDS = 20


def test_exactly_one_concurrent_claim_wins(services: Services, make_peer: Peer) -> None:
    """Workers race to claim a Scheduled run: read it, then set Pending at that version."""
    workers = [make_peer().backend for _ in range(CLAIMERS)]  # built before the threads
    for round_number in range(ROUNDS):
        run = created_run(services)
        services.backend.set_flow_run_state(run.id, Scheduled())
        barrier = threading.Barrier(CLAIMERS)
        outcomes: list[str] = [""] * CLAIMERS

        def claim(
            worker: int,
            run_id: str = run.id,
            barrier: threading.Barrier = barrier,
            outcomes: list[str] = outcomes,
        ) -> None:
            backend = workers[worker]
            barrier.wait()
            seen = backend.read_flow_run(run_id)
            if seen.state is None or not seen.state.is_scheduled():
                outcomes[worker] = "lost"  # someone claimed it before we looked
                return
            try:
                backend.set_flow_run_state(
                    run_id, Pending(f"worker {worker}"), expected_version=seen.version
                )
            except (ConflictError, InvalidTransitionError):
                outcomes[worker] = "lost"
            else:
                outcomes[worker] = "won"

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(CLAIMERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert outcomes.count("won") == 1, f"round {round_number}: {outcomes}"
        assert outcomes.count("lost") == CLAIMERS - 1
        winner = outcomes.index("won")
        stored = services.backend.read_flow_run(run.id)
        assert (stored.state_name, stored.version) == ("Pending", 2)
        assert stored.state is not None
        assert stored.state.message == f"worker {winner}"


# Task runs


def test_task_runs_round_trip_in_creation_order(services: Services, make_peer: Peer) -> None:
    backend = services.backend
    flow_run = created_run(services)
    base = datetime.now(UTC)
    names = ["zeta", "alpha", "mid"]  # creation order is not name order
    task_runs = [
        backend.create_task_run(
            new_task_run(flow_run.id, name, created=base + timedelta(seconds=i))
        )
        for i, name in enumerate(names)
    ]
    first, second, third = task_runs
    for run in task_runs:
        assert backend.set_task_run_state(run.id, Pending()).version == 1
        assert backend.set_task_run_state(run.id, Running()).version == 2

    record = persist({"answer": 42}, services.result_store, key=f"{flow_run.id}/{first.id}")
    first.task_inputs = {"x": [second.id], "__wait_for__": [third.id]}
    first.cache_key = "contract-cache-key"
    first.cache_expiration = base + timedelta(hours=1)
    first.run_count = 2
    first.start_time = base
    first.end_time = base + timedelta(seconds=5)
    first.result_record = record
    completed = Completed()
    completed.result_record = record
    assert backend.set_task_run_state(first.id, completed).version == 3
    backend.set_task_run_state(second.id, Failed("nope"))
    backend.flush()

    peer = make_peer().backend
    listed = peer.list_task_runs(flow_run.id)
    assert [r.id for r in listed] == [r.id for r in task_runs]
    assert [r.state_name for r in listed] == ["Completed", "Failed", "Running"]
    assert [r.version for r in listed] == [3, 3, 2]
    assert peer.list_task_runs("no-such-flow-run") == []

    read = peer.read_task_run(first.id, flow_run_id=flow_run.id)
    assert (read.name, read.task_key, read.task_name, read.flow_run_id) == (
        "zeta",
        "zeta-key",
        "zeta",
        flow_run.id,
    )
    assert read.task_inputs == {"x": [second.id], "__wait_for__": [third.id]}
    assert read.upstream_task_run_ids == {second.id, third.id}
    assert (read.cache_key, read.cache_expiration) == ("contract-cache-key", first.cache_expiration)
    assert (read.run_count, read.start_time, read.end_time) == (2, base, first.end_time)
    assert read.created == base
    assert read.result_record is not None
    assert read.result_record.store == services.result_store
    assert (read.result_record.key, read.result_record.serializer) == (record.key, "json")
    assert read.state is not None
    assert read.state.result() == {"answer": 42}
    assert runs.read_result(read) == {"answer": 42}
    assert [s.name for s in read.state_history] == ["Pending", "Running"]
    failed = peer.read_task_run(second.id, flow_run_id=flow_run.id)
    assert failed.state is not None
    assert (failed.state_name, failed.state.message) == ("Failed", "nope")


def test_task_runs_created_at_the_same_instant_keep_creation_order(
    services: Services, make_peer: Peer
) -> None:
    """A FakeClock (or a coarse clock) gives task runs equal `created` times."""
    flow_run = created_run(services)
    moment = datetime.now(UTC)
    names = ["b-task-0", "a-task-0", "c-task-10", "c-task-2", "c-task-1"]
    ids = [
        services.backend.create_task_run(new_task_run(flow_run.id, name, created=moment)).id
        for name in names
    ]
    services.backend.flush()
    assert [r.id for r in make_peer().backend.list_task_runs(flow_run.id)] == ids


def test_task_run_transitions_follow_the_rules(services: Services) -> None:
    backend = services.backend
    flow_run = created_run(services)
    run = backend.create_task_run(new_task_run(flow_run.id, "rules"))
    assert backend.set_task_run_state(run.id, Pending(), transition_id="t-1").applied
    replay = backend.set_task_run_state(run.id, Pending(), transition_id="t-1")
    assert (replay.applied, replay.version) == (False, 1)
    with pytest.raises(ConflictError, match=run.id):
        backend.set_task_run_state(run.id, Running(), expected_version=0)
    assert backend.set_task_run_state(run.id, Running(), expected_version=1).version == 2
    backend.set_task_run_state(run.id, Completed())
    with pytest.raises(InvalidTransitionError, match="a final state"):
        backend.set_task_run_state(run.id, Running())
    backend.flush()
    stored = backend.read_task_run(run.id, flow_run_id=flow_run.id)
    assert (stored.state_name, stored.version) == ("Completed", 3)


def test_a_task_run_outside_any_flow_run(services: Services, make_peer: Peer) -> None:
    run = services.backend.create_task_run(new_task_run(None, "standalone"))
    services.backend.set_task_run_state(run.id, Running())
    services.backend.flush()
    read = make_peer().backend.read_task_run(run.id)
    assert (read.id, read.flow_run_id, read.state_name) == (run.id, None, "Running")


def test_unknown_task_run_is_not_found(services: Services) -> None:
    backend = services.backend
    flow_run = created_run(services)
    with pytest.raises(ObjectNotFound, match="no-such-task-run"):
        backend.read_task_run("no-such-task-run")
    with pytest.raises(ObjectNotFound, match="no-such-task-run"):
        backend.read_task_run("no-such-task-run", flow_run_id=flow_run.id)
    with pytest.raises(ObjectNotFound, match="no-such-task-run"):
        backend.set_task_run_state("no-such-task-run", Pending())


# Logs


def _entry(
    message: str, flow_run_id: str | None, task_run_id: str | None = None, *, at: datetime
) -> LogEntry:
    return LogEntry(
        timestamp=at,
        level=logging.WARNING if "warn" in message else logging.INFO,
        level_name="WARNING" if "warn" in message else "INFO",
        logger="stratoflow.task_runs" if task_run_id else "stratoflow.flow_runs",
        message=message,
        flow_run_id=flow_run_id,
        task_run_id=task_run_id,
        flow_run_name="contract-run" if flow_run_id else None,
        task_run_name=f"task-{task_run_id}" if task_run_id else None,
    )


def test_logs_are_read_back_per_flow_run_and_task_run(services: Services) -> None:
    backend = services.backend
    at = datetime.now(UTC).replace(microsecond=0)  # CloudWatch keeps milliseconds
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    lines = [
        _entry("flow starts", mine, at=at),
        _entry("t1 works", mine, "t1", at=at + timedelta(milliseconds=1)),
        _entry("t2 warns: ünïcode", mine, "t2", at=at + timedelta(milliseconds=2)),
        _entry("elsewhere", other, at=at + timedelta(milliseconds=3)),
    ]
    backend.write_logs(lines[:2])
    backend.write_logs(lines[2:])
    backend.write_logs([_entry("t1 done", mine, "t1", at=at + timedelta(milliseconds=4))])
    backend.flush()

    read = backend.read_logs(mine)
    assert [e.message for e in read] == ["flow starts", "t1 works", "t2 warns: ünïcode", "t1 done"]
    assert read[:3] == lines[:3]
    assert [e.message for e in backend.read_logs(mine, task_run_id="t1")] == [
        "t1 works",
        "t1 done",
    ]
    assert backend.read_logs(mine, task_run_id="t2") == [lines[2]]
    assert [e.message for e in backend.read_logs(other)] == ["elsewhere"]
    assert backend.read_logs(str(uuid.uuid4())) == []
    # A live tail reads from its cursor on: lines at or after `since`.
    later = backend.read_logs(mine, since=at + timedelta(milliseconds=2))
    assert [e.message for e in later] == ["t2 warns: ünïcode", "t1 done"]


# Result stores and cache stores


def test_result_store_round_trip(services: Services) -> None:
    store = services.result_store
    data = bytes(range(256)) * 3
    store.write("contract/blob", data)
    assert store.read("contract/blob") == data
    assert store.exists("contract/blob")
    assert not store.exists("contract/missing")
    with pytest.raises(ObjectNotFound, match="contract/missing"):
        store.read("contract/missing")
    assert store.uri("contract/blob").endswith("/contract/blob")
    store.write("contract/blob", b"rewritten")
    assert store.read("contract/blob") == b"rewritten"
    if isinstance(store, S3ResultStore):
        settings = load_settings()
        assert store.uri("contract/blob") == (
            f"s3://{settings.results_bucket}/{RESULTS_PREFIX}contract/blob"
        )


def test_cache_store_put_get_expire_delete(services: Services) -> None:
    cache = services.cache_store
    now = datetime.now(UTC)

    def stored(cache_key: str) -> ResultRecord:
        # An entry's result lives under its own key, `cache/<key>` (the AWS reader
        # refuses an entry that points anywhere else).
        services.result_store.write(cache_result_key(cache_key), b'{"v":1}')
        return ResultRecord(
            store=services.result_store, key=cache_result_key(cache_key), serializer="json"
        )

    entry = CacheEntry(
        key="contract-live",
        result=stored("contract-live"),
        expiration=now + timedelta(hours=1),
        task_run_id="t1",
    )
    cache.put(entry)
    hit = cache.get("contract-live", now)
    assert hit == entry
    assert hit is not None
    assert hit.result.load() == {"v": 1}
    # Expiry is checked on read: the same entry is a miss once its time has passed.
    assert cache.get("contract-live", now + timedelta(hours=1)) is None
    assert cache.get("contract-live", now + timedelta(minutes=59)) == entry

    expired = CacheEntry(
        key="contract-expired", result=stored("contract-expired"), expiration=now - timedelta(1)
    )
    cache.put(expired)
    assert cache.get("contract-expired", now) is None

    forever = CacheEntry(key="contract-forever", result=stored("contract-forever"))
    cache.put(forever)
    assert cache.get("contract-forever", now + timedelta(days=3650)) == forever

    cache.delete("contract-live")
    assert cache.get("contract-live", now) is None
    cache.delete("contract-never-written")
    assert cache.get("contract-never-written", now) is None


def test_cache_store_keeps_inline_results(services: Services) -> None:
    cache = services.cache_store
    record = ResultRecord(store=None, key="k", serializer="json", inline=b"1")
    cache.put(CacheEntry(key="contract-inline", result=record))
    hit = cache.get("contract-inline", datetime.now(UTC))
    assert hit is not None
    assert hit.result == record
    assert hit.result.load() == 1
    assert hit.result.uri == "inline"


# A whole flow run through the engine


LARGE = "x" * 6000  # larger than the AWS backend's inline limit (4096 bytes)
SMALL = {"ok": True, "n": 7}
CACHE_KEY_TEXT = "contract-cached-3"


def _pipeline(calls: dict[str, int]) -> Any:
    @task(retries=2, retry_delay_seconds=0)
    def flaky(x: int) -> int:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise ValueError("first attempt fails")
        return x * 2

    @task(
        cache_key_fn=lambda ctx, parameters: f"contract-cached-{parameters['x']}",
        cache_expiration=timedelta(hours=1),
    )
    def cached(x: int) -> dict[str, int]:
        calls["cached"] += 1
        return {"value": x}

    @task
    def add_one(x: int) -> int:
        return x + 1

    @task
    def big() -> str:
        return LARGE

    @task
    def small() -> dict[str, Any]:
        get_run_logger().info("small task says hi")
        return SMALL

    @flow
    def pipeline() -> dict[str, Any]:
        get_run_logger().info("starting pipeline")
        doubled = flaky(21)
        first, again = cached(3), cached(3)
        mapped = add_one.map([1, 2, 3]).result()
        return {
            "doubled": doubled,
            "cached": [first, again],
            "mapped": mapped,
            "big": len(big()),
            "small": small(),
        }

    return pipeline


def _summary(flow_run_id: str) -> dict[str, Any]:
    """What the public read API says about a finished run, free of ids and names."""
    flow_run = runs.read_flow_run(flow_run_id)
    task_runs = runs.read_task_runs(flow_run_id)
    names = {flow_run.name: "<flow-run>"}
    lines = []
    for line in runs.read_logs(flow_run_id):
        message = line.message
        for name, placeholder in names.items():
            message = message.replace(name, placeholder)
        lines.append((line.level_name, line.task_run_name, message))
    return {
        "flow_run": (
            flow_run.state_name,
            [s.name for s in flow_run.state_history],
            flow_run.run_count,
            flow_run.version,
        ),
        "result": runs.read_result(flow_run),
        "task_runs": [
            (
                t.name,
                t.state_name,
                [s.name for s in t.state_history],
                t.run_count,
                runs.read_result(t),
            )
            for t in task_runs
        ],
        "logs": lines,
    }


EXPECTED_RESULT = {
    "doubled": 42,
    "cached": [{"value": 3}] * 2,
    "mapped": [2, 3, 4],
    "big": 6000,
    "small": SMALL,
}


def test_a_flow_run_reads_back_the_same_on_every_backend(services: Services) -> None:
    calls = {"flaky": 0, "cached": 0}
    state = _pipeline(calls)(return_state=True)
    assert state.is_completed(), state
    assert calls == {"flaky": 2, "cached": 1}
    flow_run_id = state.details["flow_run_id"]
    done = ["Pending", "Running"]
    retried = ["Pending", "Running", "AwaitingRetry", "Retrying"]

    assert _summary(flow_run_id) == {
        "flow_run": ("Completed", done, 1, 3),
        "result": EXPECTED_RESULT,
        "task_runs": [
            ("flaky-0", "Completed", retried, 2, 42),
            ("cached-0", "Completed", done, 1, {"value": 3}),
            ("cached-1", "Cached", ["Pending"], 0, {"value": 3}),
            ("add_one-0", "Completed", done, 1, 2),
            ("add_one-1", "Completed", done, 1, 3),
            ("add_one-2", "Completed", done, 1, 4),
            ("big-0", "Completed", done, 1, LARGE),
            ("small-0", "Completed", done, 1, SMALL),
        ],
        "logs": [
            ("INFO", None, "Beginning flow run '<flow-run>' for flow 'pipeline'"),
            ("INFO", None, "starting pipeline"),
            (
                "INFO",
                "flaky-0",
                "Task run failed with ValueError: first attempt fails - retry 1/2 will "
                "start 0 second(s) from now",
            ),
            ("INFO", "small-0", "small task says hi"),
            ("INFO", None, "Finished in state Completed()"),
        ],
    }

    backend = services.backend
    if isinstance(backend, AwsBackend):
        _assert_aws_placement(services, backend, flow_run_id)


def _assert_aws_placement(services: Services, backend: AwsBackend, flow_run_id: str) -> None:
    """Where the AWS backend put things: DynamoDB items, S3 objects, CloudWatch lines."""
    settings = load_settings()
    dynamodb = backend.dynamodb

    def item(pk: str, sk: str = "META") -> dict[str, Any]:
        raw = dynamodb.get_item(
            TableName=settings.table_name,
            Key={"pk": {"S": pk}, "sk": {"S": sk}},
            ConsistentRead=True,
        ).get("Item")
        assert raw is not None, f"no item {pk} / {sk}"
        return raw

    flow_item = from_item(item(f"FLOWRUN#{flow_run_id}"))
    assert (flow_item["entity"], flow_item["id"], flow_item["state_type"]) == (
        "flow_run",
        flow_run_id,
        "COMPLETED",
    )
    assert json.loads(bytes(flow_item["result"]["inline"])) == EXPECTED_RESULT

    task_items = dynamodb.query(
        TableName=settings.table_name,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={
            ":pk": {"S": f"FLOWRUN#{flow_run_id}"},
            ":prefix": {"S": "TASKRUN#"},
        },
        ConsistentRead=True,
    )["Items"]
    by_name = {i["name"]: i for i in map(from_item, task_items)}
    assert sorted(by_name) == sorted(
        [
            "flaky-0",
            "cached-0",
            "cached-1",
            "add_one-0",
            "add_one-1",
            "add_one-2",
            "big-0",
            "small-0",
        ]
    )
    assert all(i["entity"] == "task_run" for i in by_name.values())
    assert all(i["sk"] == f"TASKRUN#{i['id']}" for i in by_name.values())

    # The small result is inline in the item, the large one an S3 object under results/.
    small_item = by_name["small-0"]
    assert small_item["result"].get("store") is None
    assert json.loads(bytes(small_item["result"]["inline"])) == SMALL
    big_result = by_name["big-0"]["result"]
    assert big_result.get("inline") is None
    assert big_result["store"] == f"s3://{settings.results_bucket}/{RESULTS_PREFIX}"
    s3_key = f"{RESULTS_PREFIX}{big_result['key']}"
    assert s3_key == f"{RESULTS_PREFIX}{flow_run_id}/{by_name['big-0']['id']}"
    body = backend.result_store.read(big_result["key"])
    assert json.loads(body) == LARGE
    listed = services.result_store.client.list_objects_v2(  # type: ignore[attr-defined]
        Bucket=settings.results_bucket, Prefix=RESULTS_PREFIX
    )
    assert s3_key in [o["Key"] for o in listed.get("Contents", [])]

    # The cache entry: CACHE#<key>, with a TTL number an hour ahead (of the run's clock).
    cache_key = stable_hash(CACHE_KEY_TEXT)
    assert by_name["cached-0"]["cache_key"] == cache_key
    raw_cache = item(f"CACHE#{cache_key}")
    assert set(raw_cache[TTL_ATTRIBUTE]) == {"N"}
    cache_item = from_item(raw_cache)
    expires_at = int(cache_item[TTL_ATTRIBUTE])
    expiration = datetime.fromisoformat(cache_item["expiration"])
    assert expires_at == int(expiration.timestamp())
    started = datetime.fromisoformat(by_name["cached-0"]["start_time"])
    assert timedelta(minutes=59) < expiration - started <= timedelta(hours=1, seconds=1)
    assert json.loads(bytes(cache_item["result"]["inline"])) == {"value": 3}
    assert cache_item["task_run_id"] == by_name["cached-0"]["id"]

    # Log lines: JSON in the stream flow-run/<id> of the runs log group.
    events = backend.logs.client.get_log_events(
        logGroupName=settings.runs_log_group,
        logStreamName=log_stream_name(flow_run_id),
        startFromHead=True,
    )["events"]
    assert log_stream_name(flow_run_id) == f"flow-run/{flow_run_id}"
    documents = [json.loads(e["message"]) for e in events]
    assert documents
    assert {d["flow_run_id"] for d in documents} == {flow_run_id}
    assert "starting pipeline" in [d["message"] for d in documents]


def test_task_runs_are_written_behind_without_an_explicit_flush(
    services: Services, make_peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer thread stores task run changes by itself within `task_run_flush_seconds`."""
    monkeypatch.setenv("STRATOFLOW_TASK_RUN_FLUSH_SECONDS", "0.01")
    writer_services = make_peer()  # built after the setting: a short flush interval
    flow_run = created_run(writer_services)
    run = writer_services.backend.create_task_run(new_task_run(flow_run.id, "behind"))
    writer_services.backend.set_task_run_state(run.id, Running())

    reader = make_peer().backend
    deadline = time.monotonic() + 10
    seen: TaskRun | None = None
    while time.monotonic() < deadline:
        try:
            seen = reader.read_task_run(run.id, flow_run_id=flow_run.id)
        except ObjectNotFound:
            seen = None
        if seen is not None and seen.state_name == "Running":
            break
        time.sleep(0.01)
    assert seen is not None
    assert seen.state_name == "Running"
