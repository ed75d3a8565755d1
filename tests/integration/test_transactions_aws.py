"""Transactions on the AWS backend (moto): a task's cache record is staged in the
transaction and lands in DynamoDB on commit, never on rollback; a keyed transaction's
record makes the next one with its key COMMITTED."""

from __future__ import annotations

from typing import Any

import pytest
from _deploy_fixtures import Installation, installation  # noqa: F401

from stratoflow import flow, task
from stratoflow.cache_policies import INPUTS
from stratoflow.context import flow_run_context
from stratoflow.transactions import Transaction, transaction

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
