"""Transactions, from Prefect 3's documented behaviour (docs: "Write transactional
workflows"): commit and rollback hooks, staged cache writes, nesting, values, keys,
commit modes and isolation."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stratoflow import flow, task
from stratoflow.cache_policies import INPUTS
from stratoflow.exceptions import ConfigurationError
from stratoflow.locking import FileSystemLockManager, MemoryLockManager
from stratoflow.testing import TestHarness, stratoflow_test_harness
from stratoflow.transactions import (
    CommitMode,
    IsolationLevel,
    Transaction,
    TransactionState,
    get_transaction,
    transaction,
)


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


class Journal:
    """Records hook calls as (kind, name) and makes tasks whose hooks write to it."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []

    def hooks(self, the_task: Any, name: str) -> Any:
        @the_task.on_commit
        def committed(txn: Transaction) -> None:
            self.entries.append(("commit", name))

        @the_task.on_rollback
        def rolled_back(txn: Transaction) -> None:
            self.entries.append(("rollback", name))

        return the_task


def step(name: str, journal: Journal, **options: Any) -> Any:
    def body(x: int = 0) -> str:
        return f"{name}:{x}"

    return journal.hooks(task(name=name, **options)(body), name)


@task
def fail() -> None:
    raise ValueError("quality check failed")


def cache_has(harness: TestHarness, key: str | None) -> bool:
    assert key is not None
    return harness.services.cache_store.get(key, harness.clock.now()) is not None


# Hooks: order and when they run.


def test_a_failing_task_rolls_back_completed_tasks_in_reverse_order(harness: TestHarness) -> None:
    journal = Journal()
    first, second = step("first", journal), step("second", journal)

    @flow
    def pipeline() -> None:
        with transaction():
            first()
            second()
            fail()

    with pytest.raises(ValueError, match="quality check failed"):
        pipeline()
    assert journal.entries == [("rollback", "second"), ("rollback", "first")]
    assert harness.last_flow_run().state.is_failed()


def test_commit_hooks_run_when_the_block_ends_in_completion_order(harness: TestHarness) -> None:
    journal = Journal()
    first, second = step("first", journal), step("second", journal)
    seen_inside: list[list[tuple[str, str]]] = []

    @flow
    def pipeline() -> None:
        with transaction() as txn:
            first()
            second()
            seen_inside.append(list(journal.entries))
        assert txn.is_committed()

    pipeline()
    assert seen_inside == [[]]
    assert journal.entries == [("commit", "first"), ("commit", "second")]


def test_outside_a_transaction_commit_hooks_run_when_the_task_completes(
    harness: TestHarness,
) -> None:
    journal = Journal()
    first = step("first", journal)

    @flow
    def pipeline() -> None:
        first()
        journal.entries.append(("flow", "after first"))
        fail()

    with pytest.raises(ValueError):
        pipeline()
    # Nothing to roll back: the task's own transaction committed when it completed.
    assert journal.entries == [("commit", "first"), ("flow", "after first")]


def test_an_error_in_the_block_rolls_back_and_is_re_raised(harness: TestHarness) -> None:
    journal = Journal()
    first = step("first", journal)

    @flow
    def pipeline() -> None:
        with transaction() as txn:
            first()
            raise RuntimeError("not a task")
        assert txn  # unreachable

    with pytest.raises(RuntimeError, match="not a task"):
        pipeline()
    assert journal.entries == [("rollback", "first")]


def test_a_task_failure_rolls_back_even_when_the_block_catches_it(harness: TestHarness) -> None:
    journal = Journal()
    first = step("first", journal)
    outcome: list[TransactionState] = []

    @flow
    def pipeline() -> None:
        with transaction() as txn:
            first()
            with contextlib.suppress(ValueError):
                fail()
        outcome.append(txn.state)

    pipeline()  # as in Prefect: the failed task's transaction rolls back its parent
    assert outcome == [TransactionState.ROLLED_BACK]
    assert journal.entries == [("rollback", "first")]


def test_hook_options_and_decorators_register_hooks(harness: TestHarness) -> None:
    calls: list[str] = []

    def by_option(txn: Transaction) -> None:
        calls.append("option")

    @task(on_commit=[by_option])
    def work() -> int:
        return 1

    @work.on_commit
    def by_decorator(txn: Transaction) -> None:
        calls.append("decorator")

    assert by_decorator.__name__ == "by_decorator"  # the decorator returns the hook
    assert work.on_commit_hooks == [by_option, by_decorator]
    assert work.with_options(retries=1).options.on_commit == (by_option, by_decorator)
    with transaction():
        work()
    assert calls == ["option", "decorator"]


def test_a_failing_commit_hook_rolls_back_its_own_transaction(harness: TestHarness) -> None:
    journal = Journal()
    first = step("first", journal)
    second = step("second", journal)

    @second.on_commit
    def broken(txn: Transaction) -> None:
        raise OSError("cannot publish")

    with transaction() as txn:
        first()
        second()
    # As in Prefect: the task's transaction rolls back (its rollback hooks run), its
    # parent and siblings still commit.
    assert txn.is_committed()
    assert [child.state for child in txn.children] == [
        TransactionState.COMMITTED,
        TransactionState.ROLLED_BACK,
    ]
    assert journal.entries == [("commit", "first"), ("commit", "second"), ("rollback", "second")]


def test_async_hooks_and_async_with(harness: TestHarness) -> None:
    calls: list[str] = []

    @task
    async def work() -> int:
        txn = get_transaction()
        assert txn is not None
        calls.append(f"inside:{txn.get('run')}")
        return 1

    @work.on_commit
    async def committed(txn: Transaction) -> None:
        await asyncio.sleep(0)
        calls.append("committed")

    @flow
    async def pipeline() -> None:
        async with transaction() as txn:
            txn.set("run", "r1")
            await work()
            assert calls == ["inside:r1"]

    asyncio.run(pipeline())
    assert calls == ["inside:r1", "committed"]


# Caching inside transactions: records are staged, written on commit.


def test_cache_records_are_written_on_commit_not_before(harness: TestHarness) -> None:
    @task(cache_policy=INPUTS)
    def load(x: int) -> int:
        return x * 10

    keys: list[str | None] = []

    @flow
    def pipeline() -> None:
        with transaction():
            state = load(1, return_state=True)
            run = harness.task_runs()[-1]
            keys.append(run.cache_key)
            assert state.is_completed()
            assert not cache_has(harness, run.cache_key)  # staged only

    pipeline()
    assert cache_has(harness, keys[0])
    states: list[Any] = []

    @flow
    def again() -> None:
        states.append(load(1, return_state=True))

    again()
    assert states[0].name == "Cached" and states[0].result() == 10


def test_a_rolled_back_transaction_writes_no_cache_record(harness: TestHarness) -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS)
    def load(x: int) -> int:
        calls.append(x)
        return x

    @flow
    def pipeline() -> None:
        with transaction():
            load(1)
            fail()

    with pytest.raises(ValueError):
        pipeline()
    key = harness.task_runs()[0].cache_key
    assert not cache_has(harness, key)
    with pytest.raises(ValueError):
        pipeline()
    assert calls == [1, 1]  # not cached: it ran again


def test_a_cached_task_has_nothing_to_roll_back(harness: TestHarness) -> None:
    journal = Journal()
    load = step("load", journal, cache_policy=INPUTS)

    @flow
    def warm() -> None:
        load(1)

    @flow
    def pipeline() -> None:
        with transaction():
            load(1)
            fail()

    warm()
    journal.entries.clear()
    with pytest.raises(ValueError):
        pipeline()
    assert harness.task_runs()[0].state.name == "Cached"
    assert journal.entries == []


def test_retried_attempts_do_not_roll_back_the_transaction(harness: TestHarness) -> None:
    attempts: list[int] = []

    @task(retries=1, cache_policy=INPUTS)
    def flaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) == 1:
            raise ConnectionError("transient")
        return x

    with transaction() as txn:
        assert flaky(2) == 2
    assert txn.is_committed()  # only the run's final state counts (docs/transactions.md)
    assert len(attempts) == 2


# Nesting, values and get_transaction().


def test_nested_transactions_commit_with_the_outermost(harness: TestHarness) -> None:
    journal = Journal()
    first = step("first", journal)
    with transaction() as outer:
        with transaction() as inner:
            first()
        assert inner.is_active()  # its parent commits it
        assert journal.entries == []
        assert inner in outer.children
    assert inner.is_committed() and outer.is_committed()
    assert journal.entries == [("commit", "first")]


def test_a_rolled_back_inner_transaction_rolls_back_the_outer_one(harness: TestHarness) -> None:
    journal = Journal()
    first, second = step("first", journal), step("second", journal)
    with pytest.raises(ValueError), transaction() as outer:
        first()
        with transaction():
            second()
            fail()
    assert outer.is_rolled_back()
    assert journal.entries == [("rollback", "second"), ("rollback", "first")]


def test_values_are_shared_with_nested_transactions_and_hooks(harness: TestHarness) -> None:
    seen: list[Any] = []

    @task
    def write(filename: str) -> None:
        seen.append(("task", get_transaction() is not None))

    @write.on_rollback
    def delete(txn: Transaction) -> None:
        seen.append(("rollback", txn.get("filename")))

    with pytest.raises(ValueError), transaction() as txn:
        txn.set("filename", "side-effect.txt")
        with transaction() as inner:
            inner.set("only-inner", 1)
            assert inner.get("filename") == "side-effect.txt"
        with pytest.raises(ValueError, match="unknown key"):
            txn.get("only-inner")
        assert txn.get("only-inner", None) is None
        write("side-effect.txt")
        fail()
    assert seen == [("task", True), ("rollback", "side-effect.txt")]


def test_get_returns_a_copy_and_get_transaction_is_the_innermost(harness: TestHarness) -> None:
    assert get_transaction() is None
    with transaction() as txn:
        txn.set("rows", [1, 2])
        txn.get("rows").append(3)
        assert txn.get("rows") == [1, 2]
        assert get_transaction() is txn
        with transaction() as inner:
            assert get_transaction() is inner and inner.get_parent() is txn
        assert get_transaction() is txn
    assert get_transaction() is None


def test_a_task_runs_in_its_own_transaction_nested_in_the_active_one(
    harness: TestHarness,
) -> None:
    seen: list[Any] = []

    @task
    def inspect_transaction() -> None:
        own = get_transaction()
        assert own is not None
        seen.append((own.get_parent(), own.get("user")))

    with transaction() as txn:
        txn.set("user", "ada")
        inspect_transaction()
    assert seen == [(txn, "ada")]


# Keys: a committed record makes the next transaction with that key COMMITTED.


def test_a_keyed_transaction_is_committed_on_its_second_run(harness: TestHarness) -> None:
    runs: list[bool] = []

    @flow
    def pipeline() -> None:
        with transaction(key="download-and-write") as txn:
            runs.append(txn.is_committed())
            if txn.is_committed():
                return

    pipeline()
    pipeline()
    assert runs == [False, True]
    with transaction(key="download-and-write", overwrite=True) as txn:
        assert not txn.is_committed()


def test_a_keyed_transaction_stores_its_staged_value(harness: TestHarness) -> None:
    with transaction(key="report") as txn:
        txn.stage({"rows": 3})
        assert txn.is_staged()
        assert txn.read() is None
    record = Transaction(key="report")
    with record:
        found = record.read()
        assert found is not None and found.load() == {"rows": 3}


def test_a_rolled_back_keyed_transaction_writes_no_record(harness: TestHarness) -> None:
    with pytest.raises(RuntimeError), transaction(key="nightly"):
        raise RuntimeError("boom")
    with transaction(key="nightly") as txn:
        assert not txn.is_committed()


def test_tasks_inside_a_committed_transaction_still_run_but_do_not_commit(
    harness: TestHarness,
) -> None:
    journal = Journal()
    first = step("first", journal)
    with transaction(key="done"):
        pass
    with transaction(key="done") as txn:
        assert txn.is_committed()
        first()  # Prefect does not skip the block: check txn.is_committed() yourself
    assert journal.entries == []


# Commit modes.


def test_eager_commits_each_task_when_it_completes(harness: TestHarness) -> None:
    journal = Journal()
    first = step("first", journal, cache_policy=INPUTS)
    with pytest.raises(ValueError), transaction(commit_mode=CommitMode.EAGER):
        first(1)
        assert journal.entries == [("commit", "first")]
        assert cache_has(harness, harness.backend.list_task_runs(None)[0].cache_key)
        fail()
    # Already committed: a later failure has nothing of first's to roll back.
    assert journal.entries == [("commit", "first")]


def test_off_rolls_back_unless_committed_explicitly(harness: TestHarness) -> None:
    journal = Journal()
    first = step("first", journal)
    with transaction(commit_mode=CommitMode.OFF) as txn:
        first()
    assert txn.is_rolled_back()
    assert journal.entries == [("rollback", "first")]
    journal.entries.clear()
    with transaction(commit_mode=CommitMode.OFF) as txn:
        first()
        assert txn.commit()
    assert txn.is_committed()
    assert journal.entries == [("commit", "first")]


def test_nested_transactions_inherit_the_commit_mode(harness: TestHarness) -> None:
    with transaction(commit_mode=CommitMode.EAGER), transaction() as inner:
        assert inner.commit_mode is CommitMode.EAGER
    with transaction() as txn:
        assert txn.commit_mode is CommitMode.LAZY
        assert txn.isolation_level is IsolationLevel.READ_COMMITTED


def test_commit_and_rollback_report_whether_they_did_anything(harness: TestHarness) -> None:
    with transaction() as txn:
        assert txn.rollback()
        assert not txn.rollback()
        assert not txn.commit()
    assert txn.is_rolled_back()


# Isolation.


def test_serializable_needs_a_lock_manager(harness: TestHarness) -> None:
    with (
        pytest.raises(ConfigurationError, match="lock manager"),
        transaction(key="k", isolation_level=IsolationLevel.SERIALIZABLE),
    ):
        pass


def test_serializable_transactions_with_one_key_run_one_at_a_time(harness: TestHarness) -> None:
    locks = MemoryLockManager()
    winners: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def pipeline(name: str) -> None:
        with transaction(
            key="race", isolation_level=IsolationLevel.SERIALIZABLE, lock_manager=locks
        ) as txn:
            if txn.is_committed():
                return
            inside.set()
            release.wait(5)
            winners.append(name)

    first = threading.Thread(target=pipeline, args=("first",))
    first.start()
    assert inside.wait(5)
    second = threading.Thread(target=pipeline, args=("second",))
    second.start()
    second.join(0.2)
    assert second.is_alive()  # waits for the lock
    release.set()
    first.join(5)
    second.join(5)
    assert winners == ["first"]  # the second saw the first's record
    assert not locks.is_locked("race")


def test_read_committed_does_not_lock(harness: TestHarness) -> None:
    locks = MemoryLockManager()
    with transaction(key="free", lock_manager=locks):
        assert not locks.is_locked("free")


def test_a_task_in_a_serializable_transaction_locks_its_cache_key(harness: TestHarness) -> None:
    locks = MemoryLockManager()
    held: list[bool] = []

    @task(cache_policy=INPUTS)
    def load(x: int) -> int:
        txn = get_transaction()
        assert txn is not None and txn.key is not None
        held.append(locks.is_locked(txn.key))
        return x

    with transaction(isolation_level=IsolationLevel.SERIALIZABLE, lock_manager=locks):
        load(1)
    assert held == [True]
    key = harness.backend.list_task_runs(None)[0].cache_key
    assert key is not None and not locks.is_locked(key)


def test_file_system_lock_manager(tmp_path: Path) -> None:
    locks = FileSystemLockManager(tmp_path / "locks")
    assert locks.acquire_lock("k", holder="a")
    assert locks.acquire_lock("k", holder="a")  # re-entrant for its holder
    assert not locks.acquire_lock("k", holder="b", acquire_timeout=0.1)
    assert locks.is_lock_holder("k", "a") and locks.is_locked("k")
    with pytest.raises(ValueError):
        locks.release_lock("k", holder="b")
    locks.release_lock("k", holder="a")
    assert locks.acquire_lock("k", holder="b", acquire_timeout=0.1)


def test_submitted_tasks_join_the_transaction(harness: TestHarness) -> None:
    journal = Journal()
    first = step("first", journal)

    @flow
    def pipeline() -> None:
        with transaction():
            futures = [first.submit(i) for i in range(3)]
            for future in futures:
                future.result()
            fail()

    with pytest.raises(ValueError):
        pipeline()
    assert journal.entries == [("rollback", "first")] * 3


def test_a_task_completing_after_the_rollback_is_rolled_back_too(harness: TestHarness) -> None:
    journal = Journal()
    first, later = step("first", journal), step("later", journal)

    @flow
    def pipeline() -> None:
        with transaction():
            first()
            with contextlib.suppress(ValueError):
                fail()
            later()  # the transaction is rolled back already: nothing would undo it

    pipeline()
    assert journal.entries == [("rollback", "first"), ("rollback", "later")]


def test_async_with_a_serializable_transaction_holds_the_lock(harness: TestHarness) -> None:
    locks = MemoryLockManager()

    async def run() -> list[bool]:
        held = []
        async with transaction(
            key="async-key", isolation_level=IsolationLevel.SERIALIZABLE, lock_manager=locks
        ) as txn:
            held.append(locks.is_locked("async-key"))
            txn.stage("done")
        held.append(locks.is_locked("async-key"))
        return held

    assert asyncio.run(run()) == [True, False]


def test_a_transaction_is_entered_once(harness: TestHarness) -> None:
    txn = transaction()
    with txn, pytest.raises(RuntimeError, match="already entered"), txn:
        pass
    with pytest.raises(RuntimeError, match="without being entered"):
        transaction().__exit__(None, None, None)


def test_a_failing_block_of_a_committed_serializable_transaction_releases_the_lock(
    harness: TestHarness,
) -> None:
    locks = MemoryLockManager()
    options: dict[str, Any] = {
        "isolation_level": IsolationLevel.SERIALIZABLE,
        "lock_manager": locks,
    }
    with transaction(key="once", **options):
        pass
    with pytest.raises(RuntimeError), transaction(key="once", **options) as txn:
        assert txn.is_committed() and locks.is_locked("once")
        raise RuntimeError("after the check")
    assert not locks.is_locked("once")
