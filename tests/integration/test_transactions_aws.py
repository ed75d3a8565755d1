"""Transactions on the AWS backend (moto): a task's cache record is staged in the
transaction and lands in DynamoDB on commit, never on rollback; a keyed transaction's
record makes the next one with its key COMMITTED."""

from __future__ import annotations

from typing import Any

import pytest
from _deploy_fixtures import Installation, installation  # noqa: F401

from stratoflow import flow, task
from stratoflow.backends.aws.transaction_locks import DynamoLockManager
from stratoflow.cache_policies import INPUTS
from stratoflow.context import flow_run_context
from stratoflow.transactions import IsolationLevel, Transaction, transaction

TABLE = "stratoflow"


def cache_item(found: Installation, key: str) -> dict[str, Any] | None:
    """The cache entry's item in the state table, read straight from DynamoDB."""
    client = found.session.client("dynamodb")
    return client.get_item(
        TableName=TABLE,
        Key={"pk": {"S": f"CACHE#{key}"}, "sk": {"S": "META"}},
        ConsistentRead=True,
    ).get("Item")


@task(cache_policy=INPUTS)
def load(rows: int) -> int:
    return rows * 2


@task
def check(rows: int) -> None:
    if rows < 0:
        raise ValueError("negative rows")


def test_staged_cache_records_land_in_dynamodb_on_commit_only(
    installation: Installation,
) -> None:
    keys: list[str] = []
    seen_inside: list[dict[str, Any] | None] = []
    committed: list[str] = []

    @load.on_commit
    def note(txn: Transaction) -> None:
        committed.append(str(txn.key))

    @flow
    def pipeline(rows: int) -> int:
        with transaction():
            value = load(rows)
            flow_ctx = flow_run_context.get()
            assert flow_ctx is not None
            runs = installation.services.backend.list_task_runs(flow_ctx.flow_run.id)
            key = runs[-1].cache_key
            assert key is not None
            keys.append(key)
            seen_inside.append(cache_item(installation, key))
            check(rows)
        return value

    assert pipeline(3) == 6
    assert seen_inside == [None]  # staged, not written, while the block ran
    assert cache_item(installation, keys[0]) is not None
    assert committed == [keys[0]]

    with pytest.raises(ValueError, match="negative rows"):
        pipeline(-1)
    assert cache_item(installation, keys[1]) is None  # rolled back: nothing written

    # The committed record is a cache hit for the next run.
    @flow
    def again() -> str:
        return load(3, return_state=True).name  # type: ignore[no-any-return]

    assert again() == "Cached"


def test_a_keyed_transaction_record_in_dynamodb(installation: Installation) -> None:
    with transaction(key="nightly-export") as txn:
        assert not txn.is_committed()
        txn.stage({"files": 2})
    assert cache_item(installation, "nightly-export") is not None
    with transaction(key="nightly-export") as again:
        assert again.is_committed()
        record = again.read()
        assert record is not None and record.load() == {"files": 2}


def test_serializable_transactions_lock_in_dynamodb(installation: Installation) -> None:
    locks = DynamoLockManager.for_cache_store(installation.services.cache_store)
    with transaction(
        key="exports-2024", isolation_level=IsolationLevel.SERIALIZABLE, lock_manager=locks
    ):
        assert locks.is_locked("exports-2024")
        other = DynamoLockManager.for_cache_store(installation.services.cache_store)
        assert not other.acquire_lock("exports-2024", holder="someone", acquire_timeout=0.3)
    assert not locks.is_locked("exports-2024")
    # The cache entry beside the lock is the transaction's record.
    assert cache_item(installation, "exports-2024") is not None


def test_an_expired_lock_is_free_again(installation: Installation) -> None:
    locks = DynamoLockManager.for_cache_store(installation.services.cache_store, hold_timeout=0.2)
    assert locks.acquire_lock("k", holder="crashed")
    assert locks.acquire_lock("k", holder="crashed")  # its holder takes it again
    assert not locks.acquire_lock("k", holder="next", acquire_timeout=0)
    assert locks.acquire_lock("k", holder="next", acquire_timeout=2)
    assert locks.is_lock_holder("k", "next")
    with pytest.raises(ValueError, match="not held"):
        locks.release_lock("k", holder="crashed")
    locks.release_lock("k", holder="next")
    assert not locks.is_locked("k")
