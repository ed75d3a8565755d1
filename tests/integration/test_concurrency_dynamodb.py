"""DynamoConcurrencyStore against moto: item layout, optimistic writes, leases, rate limits,
and the task engine's tag limits on a DynamoDB store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stratoflow import flow, task
from stratoflow.backends.aws.concurrency import DynamoConcurrencyStore
from stratoflow.clock import FakeClock, SystemClock
from stratoflow.concurrency import (
    AcquireConcurrencySlotTimeout,
    ConcurrencyLimit,
    ConcurrencyLimitExists,
    ConcurrencyLimitNotFound,
    concurrency,
    create_concurrency_limit,
    list_concurrency_limits,
    rate_limit,
)
from stratoflow.concurrency.leases import get_renewer
from stratoflow.models import TaskRun
from stratoflow.resources import concurrency_key, concurrency_limit_key, provision
from stratoflow.testing import TestHarness, stratoflow_test_harness

# TTLs, schedules or time windows: also run with the clock moved (tests/timeshift.py).
pytestmark = pytest.mark.date_sensitive


@pytest.fixture(scope="module")
def aws() -> Iterator[tuple[Any, str]]:
    """One emulated installation for the module (each test uses its own limit names)."""
    with mock_aws():
        session = boto3.Session(
            region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        names = provision(session)
        yield session.client("dynamodb"), names.table


@pytest.fixture
def store(aws: tuple[Any, str]) -> Iterator[DynamoConcurrencyStore]:
    client, table = aws
    dynamo = DynamoConcurrencyStore(client, table)
    yield dynamo
    for limit in dynamo.list():
        dynamo.delete(limit.name)


def harness_with(store: DynamoConcurrencyStore, clock: Any) -> Any:
    """A test harness whose services use the DynamoDB store."""

    class _Harness:
        def __enter__(self) -> TestHarness:
            self._cm = stratoflow_test_harness(clock=clock)
            harness = self._cm.__enter__()
            harness.services.concurrency = store
            return harness

        def __exit__(self, *exc: Any) -> None:
            self._cm.__exit__(*exc)

    return _Harness()


class AtomicClient:
    """DynamoDB applies each request atomically; moto checks a condition and then writes in
    separate Python steps, so threads can interleave between them. Serialize requests, as
    the service effectively does per item."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name == "get_paginator":
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


def history_names(run: TaskRun) -> list[str]:
    assert run.state is not None
    return [s.name for s in run.state_history] + [run.state.name]


# Limits and the item


def test_limits_round_trip_and_are_listed(store: DynamoConcurrencyStore) -> None:
    created = store.create("db", 3)
    store.create("api", 10, slot_decay_per_second=0.25, active=False)
    assert created == ConcurrencyLimit(name="db", limit=3)
    assert store.read("db") == created
    api = store.read("api")
    assert api is not None
    assert (api.limit, api.active, api.slot_decay_per_second) == (10, False, 0.25)
    assert store.read("missing") is None
    assert [limit.name for limit in store.list()] == ["api", "db"]
    with pytest.raises(ConcurrencyLimitExists, match="'db' already exists"):
        store.create("db", 5)

    updated = store.update("db", limit=4, active=False, slot_decay_per_second=1.5)
    assert (updated.limit, updated.active, updated.slot_decay_per_second) == (4, False, 1.5)
    assert updated.version == 1
    assert store.update("db", active=True).active
    with pytest.raises(ConcurrencyLimitNotFound):
        store.update("missing", limit=1)
    with pytest.raises(ValueError, match="limit=0"):
        store.update("db", limit=0)
    assert store.delete("db")
    assert not store.delete("db")
    assert [limit.name for limit in store.list()] == ["api"]


def test_the_item_layout(store: DynamoConcurrencyStore, aws: tuple[Any, str]) -> None:
    client, table = aws
    clock = FakeClock()
    store.create("db", 2)
    assert store.try_acquire(["db"], 2, "lease-1", clock.now(), 30)
    # The definition, in a partition worker roles cannot write (docs/security.md)...
    definition = client.get_item(
        TableName=table, Key=_low_level(concurrency_limit_key("db")), ConsistentRead=True
    )["Item"]
    assert definition["pk"] == {"S": "CONCURRENCYLIMIT#db"}
    assert definition["sk"] == {"S": "META"}
    assert definition["limit"] == {"N": "2"}
    assert definition["active"] == {"BOOL": True}
    assert definition["version"] == {"N": "0"}
    # ...and the usage the holders write, without any setting of the limit.
    item = client.get_item(TableName=table, Key=_key("db"), ConsistentRead=True)["Item"]
    assert item["pk"] == {"S": "CONCURRENCY#db"}
    assert item["sk"] == {"S": "META"}
    assert not {"limit", "active", "slot_decay_per_second"} & set(item)
    assert item["version"] == {"N": "1"}
    expires = clock.now().timestamp() + 30
    lease = item["leases"]["M"]["lease-1"]["M"]
    assert lease["slots"] == {"N": "2"}
    assert float(lease["expires"]["N"]) == pytest.approx(expires)
    limit = store.read("db")
    assert limit is not None
    assert limit.leases[0].expires == clock.now() + timedelta(seconds=30)  # exact


def test_the_api_manages_limits_in_the_services_store(store: DynamoConcurrencyStore) -> None:
    with harness_with(store, FakeClock()):
        create_concurrency_limit("db", 1)
        assert [limit.name for limit in list_concurrency_limits()] == ["db"]
    assert store.read("db") is not None


# Slots


def test_a_limit_is_never_exceeded_under_contention(
    store: DynamoConcurrencyStore, aws: tuple[Any, str]
) -> None:
    client, table = aws
    atomic = DynamoConcurrencyStore(AtomicClient(client), table)
    atomic.create("db", 3)
    lock = threading.Lock()
    live = [0]
    peaks = [0]
    errors: list[BaseException] = []
    start = threading.Barrier(12)

    def worker() -> None:
        try:
            start.wait()
            with concurrency("db"):
                with lock:
                    live[0] += 1
                    peaks[0] = max(peaks[0], live[0])
                time.sleep(0.1)  # moto is slow: hold long enough for holders to overlap
                with lock:
                    live[0] -= 1
        except BaseException as exc:
            errors.append(exc)

    with harness_with(atomic, SystemClock()):
        threads = [threading.Thread(target=worker) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
    assert errors == []
    assert peaks[0] == 3
    limit = store.read("db")
    assert limit is not None
    assert limit.leases == ()


def test_a_write_based_on_a_stale_read_is_retried(store: DynamoConcurrencyStore) -> None:
    """Between our read and our write another holder takes the last slot: the conditional
    write fails, we read again and find the limit full."""
    clock = FakeClock()
    store.create("db", 1)
    interfering = DynamoConcurrencyStore(store.client, store.table_name)
    reads: list[int] = []
    original_read = store._read_items  # both items, in one consistent read

    def read(name: str) -> tuple[Any, Any]:
        snapshot = original_read(name)
        reads.append(1)
        if len(reads) == 1:
            assert interfering.try_acquire([name], 1, "sneaky", clock.now(), 30)
        return snapshot

    store._read_items = read  # type: ignore[method-assign]
    assert not store.try_acquire(["db"], 1, "mine", clock.now(), 30)
    assert len(reads) == 2
    limit = interfering.read("db")
    assert limit is not None
    assert [lease.lease_id for lease in limit.leases] == ["sneaky"]


def test_a_dead_holders_slots_come_back_when_its_lease_expires(
    store: DynamoConcurrencyStore,
) -> None:
    clock = FakeClock()
    store.create("db", 1)
    assert store.try_acquire(["db"], 1, "dead", clock.now(), 30)  # never released
    with harness_with(store, clock):
        with (
            pytest.raises(AcquireConcurrencySlotTimeout),
            concurrency("db", timeout_seconds=0),
        ):
            pass
        with concurrency("db", timeout_seconds=60):
            limit = store.read("db")
            assert limit is not None
            assert len(limit.leases) == 1
            assert limit.leases[0].lease_id != "dead"
        assert 30 <= sum(clock.sleeps) < 32
    limit = store.read("db")
    assert limit is not None
    assert limit.leases == ()


def test_renewal_keeps_a_lease_alive_past_its_first_expiry(store: DynamoConcurrencyStore) -> None:
    clock = FakeClock()
    store.create("db", 1)
    with harness_with(store, clock), concurrency("db", lease_seconds=30):
        for _ in range(3):
            clock.advance(20)
            get_renewer().renew_all()
        assert not store.try_acquire(["db"], 1, "other", clock.now(), 30)
        limit = store.read("db")
        assert limit is not None
        assert limit.leases[0].expires == clock.now() + timedelta(seconds=30)
        assert limit.version == 4  # acquired, then renewed three times
    assert store.try_acquire(["db"], 1, "other", clock.now(), 30)


def test_renew_and_release_of_a_lease_that_is_gone(store: DynamoConcurrencyStore) -> None:
    clock = FakeClock()
    store.create("db", 1)
    assert not store.renew("db", "nobody", clock.now(), 30)
    store.release("db", "nobody")
    assert not store.renew("missing", "nobody", clock.now(), 30)
    store.release("missing", "nobody")
    assert store.try_acquire(["db"], 1, "mine", clock.now(), 30)
    store.release("db", "mine")
    assert not store.renew("db", "mine", clock.now(), 30)
    assert store.try_acquire(["missing"], 1, "mine", clock.now(), 30)  # no limit: no lease
    store.create("off", 1, active=False)
    assert store.try_acquire(["off"], 1, "a", clock.now(), 30)
    assert store.try_acquire(["off"], 1, "b", clock.now(), 30)


# Rate limits


def test_rate_limit_lets_through_limit_plus_decay(store: DynamoConcurrencyStore) -> None:
    clock = FakeClock()
    store.create("api", 5, slot_decay_per_second=2)

    def burst() -> int:
        passed = 0
        while True:
            try:
                rate_limit("api", timeout_seconds=0)
            except AcquireConcurrencySlotTimeout:
                return passed
            passed += 1

    with harness_with(store, clock):
        assert burst() == 5
        clock.advance(1)
        assert burst() == 2
        clock.advance(0.25)
        assert burst() == 0
        clock.advance(0.25)
        assert burst() == 1
        clock.advance(100)
        assert burst() == 5
        start = clock.now()
        for _ in range(4):
            rate_limit("api")
        assert 2.0 <= (clock.now() - start).total_seconds() < 3.5
    with pytest.raises(ValueError, match="no slot decay"):
        store.create("db", 1)
        store.try_consume_rate("db", 1, clock.now())


# Tag limits in the task engine


def test_tag_limits_on_a_dynamodb_store(store: DynamoConcurrencyStore) -> None:
    class ReleasingClock(FakeClock):
        """The other holder gives its slot back while the task run waits."""

        def sleep(self, seconds: float) -> None:
            super().sleep(seconds)
            store.release("tag:db", "other")

    clock = ReleasingClock()
    store.create("tag:db", 1)
    assert store.try_acquire(["tag:db"], 1, "other", clock.now(), 30)

    @task(tags=["db"])
    def write() -> str:
        return "written"

    @task(tags=["db"])
    def fails() -> None:
        raise ValueError("boom")

    @flow
    def pipeline() -> tuple[str, bool]:
        return write(), fails(return_state=True).is_failed()

    with harness_with(store, clock) as harness:
        assert pipeline() == ("written", True)
        first, second = harness.task_runs()
    assert history_names(first) == ["Pending", "AwaitingConcurrencySlot", "Running", "Completed"]
    assert history_names(second) == ["Pending", "Running", "Failed"]
    limit = store.read("tag:db")
    assert limit is not None
    assert limit.leases == ()


def _key(name: str) -> dict[str, Any]:
    return {k: {"S": v} for k, v in concurrency_key(name).items()}


def _low_level(key: dict[str, str]) -> dict[str, Any]:
    return {k: {"S": v} for k, v in key.items()}
