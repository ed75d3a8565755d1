"""Prefect 3's cache-policy API under stratoflow.cache_policies (Prefect's documented
behaviour: docs "Caching" and prefect/cache_policies.py)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel

from stratoflow import flow, task
from stratoflow.cache import LocalFileCacheStore, MemoryCacheStore
from stratoflow.cache_policies import (
    DEFAULT,
    INPUTS,
    NO_CACHE,
    NONE,
    RUN_ID,
    TASK_SOURCE,
    CacheKeyContext,
    CacheKeyFnPolicy,
    CachePolicy,
    CompoundCachePolicy,
    Inputs,
    UncacheableInputError,
    cache_key_or_none,
    cache_store_for,
)
from stratoflow.results import LocalFileSystemResultStore
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


def key_context(inputs: dict[str, Any], **flow_parameters: Any) -> CacheKeyContext:
    task_ctx: Any = SimpleNamespace(task=SimpleNamespace(task_key="mod.fn", fn=len))
    return CacheKeyContext(task_ctx, inputs, flow_parameters, "run-1")


class Order(BaseModel):
    id: int
    placed: datetime


# INPUTS: pydantic models hash by their JSON dump


def test_equal_models_give_equal_keys() -> None:
    placed = datetime(2026, 1, 2, tzinfo=UTC)
    first = INPUTS.compute_key(key_context({"order": Order(id=1, placed=placed)}))
    second = INPUTS.compute_key(key_context({"order": Order(id=1, placed=placed)}))
    other = INPUTS.compute_key(key_context({"order": Order(id=2, placed=placed)}))
    assert first == second != other


def test_a_model_class_redefined_with_the_same_name_keeps_its_keys() -> None:
    def define() -> type[BaseModel]:
        class Row(BaseModel):
            value: int

        return Row

    old, new = define(), define()
    assert old is not new
    assert INPUTS.compute_key(key_context({"row": old(value=3)})) == INPUTS.compute_key(
        key_context({"row": new(value=3)})
    )


def test_models_inside_lists_and_dicts_hash_by_their_dump() -> None:
    def define() -> type[BaseModel]:
        class Item(BaseModel):
            n: int

        return Item

    old, new = define(), define()
    assert INPUTS.compute_key(key_context({"items": [old(n=1)], "by": {"a": old(n=2)}})) == (
        INPUTS.compute_key(key_context({"items": [new(n=1)], "by": {"a": new(n=2)}}))
    )


def test_a_model_argument_hits_the_cache_in_a_later_run(harness: TestHarness) -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS)
    def total(order: Order) -> int:
        calls.append(order.id)
        return order.id * 10

    @flow
    def shop(order_id: int) -> int:
        return total(Order(id=order_id, placed=datetime(2026, 1, 2, tzinfo=UTC)))

    assert [shop(1), shop(1), shop(2)] == [10, 10, 20]
    assert calls == [1, 2]


# INPUTS: an argument that cannot be hashed


def test_an_unpicklable_argument_raises_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="'lock'") as raised:
        INPUTS.compute_key(key_context({"n": 1, "lock": threading.Lock()}))
    assert isinstance(raised.value, UncacheableInputError)
    message = str(raised.value)
    assert "cache_key_fn" in message
    assert "NO_CACHE" in message
    assert 'INPUTS - "lock"' in message


def test_excluding_the_unpicklable_argument_makes_a_key() -> None:
    assert (INPUTS - "lock").compute_key(key_context({"n": 1, "lock": threading.Lock()}))


def test_a_failing_policy_is_logged_and_means_no_caching(caplog: Any) -> None:
    logger = logging.getLogger("test.cache")
    with caplog.at_level(logging.ERROR, logger="test.cache"):
        key = cache_key_or_none(INPUTS, key_context({"lock": threading.Lock()}), logger)
    assert key is None
    assert "Error encountered when computing cache key" in caplog.text


def test_a_task_with_an_unpicklable_argument_runs_uncached(harness: TestHarness) -> None:
    @task(cache_policy=INPUTS)
    def guarded(n: int, lock: Any) -> int:
        with lock:
            return n

    @flow
    def run() -> int:
        return guarded(5, threading.Lock())

    assert run() == 5
    assert harness.task_runs()[0].cache_key is None


# Arithmetic of policies


def test_subtracting_from_a_compound_policy_excludes_from_its_inputs() -> None:
    policy = (INPUTS + TASK_SOURCE) - "verbose"
    assert isinstance(policy, CompoundCachePolicy)
    inputs = [p for p in policy.policies if isinstance(p, Inputs)]
    assert [p.exclude for p in inputs] == [frozenset({"verbose"})]


def test_subtracting_from_a_policy_without_inputs_changes_nothing() -> None:
    assert TASK_SOURCE - "x" is TASK_SOURCE
    assert (TASK_SOURCE + RUN_ID) - "x" == TASK_SOURCE + RUN_ID


def test_subtracting_something_else_than_a_name_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        INPUTS - 3  # type: ignore[operator]


def test_adding_none_is_a_no_op() -> None:
    assert INPUTS + NONE is INPUTS
    assert NONE + INPUTS is INPUTS
    assert NO_CACHE is NONE


def test_two_inputs_policies_merge_their_exclusions() -> None:
    policy = (INPUTS - "a") + TASK_SOURCE + (INPUTS - "b")
    assert isinstance(policy, CompoundCachePolicy)
    inputs = [p for p in policy.policies if isinstance(p, Inputs)]
    assert [p.exclude for p in inputs] == [frozenset({"a", "b"})]


def test_from_cache_key_fn() -> None:
    policy = CachePolicy.from_cache_key_fn(lambda ctx, params: "fixed")
    assert isinstance(policy, CacheKeyFnPolicy)
    assert policy.compute_key(key_context({})) is not None


# configure()


def test_configure_returns_a_configured_copy(tmp_path: Path) -> None:
    configured = INPUTS.configure(key_storage=str(tmp_path), isolation_level="SERIALIZABLE")
    assert configured is not INPUTS
    assert INPUTS.key_storage is None and INPUTS.isolation_level is None
    assert configured.key_storage == tmp_path
    assert configured.isolation_level == "SERIALIZABLE"
    assert configured.compute_key(key_context({"a": 1})) == INPUTS.compute_key(
        key_context({"a": 1})
    )
    again = configured.configure(lock_manager="locks")
    assert (again.key_storage, again.lock_manager) == (tmp_path, "locks")


def test_configure_takes_a_local_result_store_or_a_cache_store(tmp_path: Path) -> None:
    store = MemoryCacheStore()
    assert cache_store_for(DEFAULT.configure(key_storage=store), MemoryCacheStore()) is store
    local = cache_store_for(
        INPUTS.configure(key_storage=LocalFileSystemResultStore(tmp_path)), store
    )
    assert isinstance(local, LocalFileCacheStore) and local.directory == tmp_path
    assert cache_store_for(INPUTS, store) is store


def test_configure_refuses_what_it_cannot_honour() -> None:
    with pytest.raises(TypeError, match="key_storage"):
        INPUTS.configure(key_storage=42)
    with pytest.raises(ValueError, match="READ_COMMITTED"):
        INPUTS.configure(isolation_level="DIRTY")


def test_key_storage_is_where_the_entries_go(harness: TestHarness, tmp_path: Path) -> None:
    @task(cache_policy=INPUTS.configure(key_storage=tmp_path / "keys"))
    def square(n: int) -> int:
        return n * n

    @flow
    def run() -> int:
        return square(3)

    assert run() == 9
    key = harness.task_runs()[0].cache_key
    assert key is not None
    assert LocalFileCacheStore(tmp_path / "keys").get(key, datetime.now(UTC)) is not None


def test_settings_carry_over_addition_and_conflicts_are_refused(tmp_path: Path) -> None:
    stored = INPUTS.configure(key_storage=tmp_path)
    assert (stored + TASK_SOURCE).key_storage == tmp_path
    assert (TASK_SOURCE + stored).key_storage == tmp_path
    with pytest.raises(ValueError, match="different key storages"):
        stored + TASK_SOURCE.configure(key_storage=tmp_path / "other")


# A policy written for Prefect


@dataclass
class ByFirstArgument(CachePolicy):
    """Prefect's documented way to write a policy: compute_key(task_ctx, inputs, ...)."""

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        return str(next(iter(inputs.values()), None))


def test_a_prefect_style_policy_computes_keys() -> None:
    assert ByFirstArgument().compute_key(key_context({"x": 7, "y": 1})) == "7"
    called_like_prefect = ByFirstArgument().compute_key(
        task_ctx=None, inputs={"x": 8}, flow_parameters={}
    )
    assert called_like_prefect == "8"


def test_a_prefect_style_policy_caches_task_runs(harness: TestHarness) -> None:
    calls: list[tuple[int, int]] = []

    @task(cache_policy=ByFirstArgument())
    def add(x: int, y: int) -> int:
        calls.append((x, y))
        return x + y

    @flow
    def run() -> list[int]:
        return [add(1, 1), add(1, 2), add(2, 2)]

    assert run() == [2, 2, 4]
    assert calls == [(1, 1), (2, 2)]
    assert (ByFirstArgument() + TASK_SOURCE).compute_key(key_context({"x": 1})) is not None
