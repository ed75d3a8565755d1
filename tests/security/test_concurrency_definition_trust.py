"""Finding 2 of issue 12, concurrency limits, performed on moto: a worker may write a
limit's usage item (`CONCURRENCY#<name>`, allowed by its policy: see
test_worker_table_policy.py), so it writes there what the old layout read as the limit's
settings, or forged usage. Admission still follows the operator's definition
(`CONCURRENCYLIMIT#<name>`), and a forged usage item does no more than holding slots
would (docs/security.md, "Control-plane definitions are read only from their own
items")."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stratoflow import resources
from stratoflow.backends.aws.concurrency import DynamoConcurrencyStore
from stratoflow.backends.aws.concurrency_items import epoch
from stratoflow.backends.aws.items import to_item
from stratoflow.clock import FakeClock

LEGACY = {"entity": "concurrency_limit", "slot_decay_per_second": 0, "decayed_slots": 0}


@pytest.fixture
def store() -> Iterator[DynamoConcurrencyStore]:
    with mock_aws():
        session = boto3.Session(
            region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        names = resources.provision(session)
        yield DynamoConcurrencyStore(session.client("dynamodb"), names.table)


def worker_writes(store: DynamoConcurrencyStore, name: str, /, **attributes: Any) -> None:
    """Write, as a worker role may, the usage item of `name` with `attributes`."""
    key = to_item(resources.concurrency_key(name))
    sets = ", ".join(f"#a{i} = :v{i}" for i in range(len(attributes)))
    store.client.update_item(
        TableName=store.table_name,
        Key=key,
        UpdateExpression=f"SET {sets}",
        ExpressionAttributeNames={f"#a{i}": a for i, a in enumerate(attributes)},
        ExpressionAttributeValues={f":v{i}": v for i, v in enumerate(to_item(attributes).values())},
    )


def admitted(store: DynamoConcurrencyStore, name: str, tries: int, clock: FakeClock) -> int:
    return sum(store.try_acquire([name], 1, f"holder-{i}", clock.now(), 30) for i in range(tries))


@pytest.mark.parametrize(
    "forged",
    [{"limit": 1000}, {"active": False}, {"limit": 1000, "active": False, "version": 0}],
    ids=["raised", "deactivated", "both-and-version-reset"],
)
def test_settings_written_into_the_usage_item_do_not_change_admission(
    store: DynamoConcurrencyStore, forged: dict[str, Any]
) -> None:
    clock = FakeClock()
    store.create("db", 2)
    assert store.try_acquire(["db"], 1, "genuine", clock.now(), 30)
    worker_writes(store, "db", **forged)
    assert admitted(store, "db", 5, clock) == 1  # the operator's 2 slots, one taken
    limit = store.read("db")
    assert limit is not None
    assert (limit.limit, limit.active) == (2, True)
    assert [(x.name, x.limit, x.active) for x in store.list()] == [("db", 2, True)]


def test_a_limit_written_by_a_worker_does_not_exist(
    store: DynamoConcurrencyStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The old attack's creation: a worker writes a whole limit (limit 1) under a name
    flows use but no operator limited. It does not limit, nor is it listed."""
    clock = FakeClock()
    worker_writes(store, "tag:gpu", name="tag:gpu", limit=1, active=True, version=0, **LEGACY)
    with caplog.at_level(logging.WARNING):
        assert admitted(store, "tag:gpu", 3, clock) == 3
        assert store.read("tag:gpu") is None
        assert store.list() == []
    # One warning for the name, however often it is read.
    assert sum("'tag:gpu' is stored the old way" in r.message for r in caplog.records) == 1
    assert any("1 concurrency limit(s) stored the old way" in r.message for r in caplog.records)


def test_forged_usage_is_at_worst_a_full_limit_and_only_that_one(
    store: DynamoConcurrencyStore,
) -> None:
    clock = FakeClock()
    store.create("db", 2)
    store.create("api", 2)
    later = Decimal(epoch(clock.now() + timedelta(hours=1)))
    # Slots claimed by a lease nobody renews: the limit is full (as if a worker held
    # them) until the lease expires.
    worker_writes(store, "db", leases={"forged": {"slots": 1000, "expires": later}}, version=0)
    assert admitted(store, "db", 2, clock) == 0
    clock.advance(2 * 3600)
    assert admitted(store, "db", 3, clock) == 2
    # Negative slots would add capacity: the item counts as unreadable, so full.
    worker_writes(store, "db", leases={"minus": {"slots": -5, "expires": 0}}, version=7)
    assert admitted(store, "db", 3, clock) == 0
    # Garbage: full, but reading and listing still work, and other limits do.
    worker_writes(store, "db", leases="not a map", version="x")
    assert admitted(store, "db", 3, clock) == 0
    assert store.try_consume_rate("db", 1, clock.now()) is False
    assert [x.name for x in store.list()] == ["api", "db"]
    assert store.read("db") is not None
    assert admitted(store, "api", 3, clock) == 2
    # The operator resets it: delete and create again.
    assert store.delete("db")
    store.create("db", 2)
    assert admitted(store, "db", 3, clock) == 2


def test_an_old_layout_limit_is_migrated_by_the_operators_update(
    store: DynamoConcurrencyStore,
) -> None:
    """Before the split one item held the settings and the leases. Such a limit no longer
    limits (a worker could have written it); `update_concurrency_limit(name)` moves its
    settings to the definition item, keeping the leases held."""
    clock = FakeClock()
    lease = {"slots": 1, "expires": Decimal(epoch(clock.now() + timedelta(seconds=30)))}
    worker_writes(
        store, "old", name="old", limit=2, active=True, version=3, leases={"h": lease}, **LEGACY
    )
    assert store.read("old") is None
    migrated = store.update("old")
    assert (migrated.limit, migrated.active, [x.lease_id for x in migrated.leases]) == (
        2,
        True,
        ["h"],
    )
    usage = store.client.get_item(
        TableName=store.table_name, Key=to_item(resources.concurrency_key("old"))
    )["Item"]
    assert not {"limit", "active", "slot_decay_per_second"} & set(usage)
    assert admitted(store, "old", 3, clock) == 1  # 2 slots, the migrated lease holds one
    raised = store.update("old", limit=3)
    assert raised.limit == 3
    assert store.delete("old")
    assert store.read("old") is None


def test_one_acquisition_costs_one_read_call_and_one_write_call(
    store: DynamoConcurrencyStore,
) -> None:
    """The cost of the split (docs/concurrency.md): both items come in one BatchGetItem."""
    clock = FakeClock()
    store.create("db", 100)
    calls: list[str] = []
    store.client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )
    for i in range(10):
        assert store.try_acquire(["db"], 1, f"h{i}", clock.now(), 30)
    assert calls == ["BatchGetItem", "UpdateItem"] * 10
