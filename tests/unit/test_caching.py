"""Task caching: cache policies, cache keys, hits, expiry, refresh and cache stores."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stratoflow import flow, task
from stratoflow.cache import CacheEntry, LocalFileCacheStore, MemoryCacheStore
from stratoflow.cache_policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NONE,
    RUN_ID,
    TASK_SOURCE,
    CompoundCachePolicy,
)
from stratoflow.models import TaskRun
from stratoflow.results import LocalFileSystemResultStore, ResultRecord, ResultStore
from stratoflow.states import State, StateType
from stratoflow.tasks import task_input_hash
from stratoflow.testing import TestHarness, stratoflow_test_harness

# TTLs, schedules or time windows: also run with the clock moved (tests/timeshift.py).
pytestmark = pytest.mark.date_sensitive


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


@dataclass(frozen=True)
class Point:
    x: int
    y: int


class Counter:
    """Counts calls of a task function; returns `value(n)` for call number n."""

    def __init__(self, value: Callable[[int], Any] = lambda n: n) -> None:
        self.calls = 0
        self.value = value

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.value(self.calls)


def in_flow(the_task: Any, *args: Any, **kwargs: Any) -> State:
    """Run `the_task(*args, **kwargs)` in a new flow run and return the task's state."""
    states: list[State] = []

    @flow
    def wrapper() -> None:
        states.append(the_task(*args, return_state=True, **kwargs))

    wrapper()
    return states[0]


def last_task_run(harness: TestHarness) -> TaskRun:
    return harness.task_runs()[-1]


def stored_path(run: TaskRun) -> Path:
    record = run.result_record
    assert record is not None
    assert isinstance(record.store, LocalFileSystemResultStore)
    return record.store.basepath / record.key


# A hit: Cached state, stored result, function not run


def test_cache_hit_across_two_flow_runs(harness: TestHarness) -> None:
    counter = Counter(lambda n: {"value": 42, "call": n})

    @task(cache_policy=INPUTS)
    def compute(x: int) -> dict[str, int]:
        return counter(x)

    first = in_flow(compute, 1)
    second = in_flow(compute, 1)

    assert counter.calls == 1
    assert first.name == "Completed"
    assert second.name == "Cached"
    assert second.type is StateType.COMPLETED
    assert second.is_completed()
    assert second.result() == {"value": 42, "call": 1}
    run = last_task_run(harness)
    assert run.state is not None
    assert run.state.name == "Cached"
    assert run.run_count == 0
    assert [s.name for s in run.state_history] == ["Pending"]


def test_cache_hit_returns_the_value_from_a_plain_call(harness: TestHarness) -> None:
    counter = Counter(lambda n: n * 100)
    cached = task(cache_policy=INPUTS)(counter)

    @flow
    def pipeline() -> list[int]:
        return [cached(1), cached(1), cached(2)]

    assert pipeline() == [100, 100, 200]
    assert counter.calls == 2
    assert [r.state_name for r in harness.task_runs()] == ["Completed", "Cached", "Completed"]


def test_cache_hit_records_the_key_and_result(harness: TestHarness) -> None:
    cached = task(cache_policy=INPUTS)(Counter())
    in_flow(cached, 5)
    first = last_task_run(harness)
    in_flow(cached, 5)
    second = last_task_run(harness)
    assert first.cache_key is not None
    assert second.cache_key == first.cache_key
    assert second.result_record == first.result_record
    assert second.result_record is not None
    assert second.result_record.load() == 1


def test_cache_hit_calls_on_completion(harness: TestHarness) -> None:
    seen: list[str] = []

    def hook(the_task: Any, task_run: Any, state: State) -> None:
        seen.append(state.name)

    cached = task(cache_policy=INPUTS, on_completion=[hook])(Counter())
    in_flow(cached, 1)
    in_flow(cached, 1)
    assert seen == ["Completed", "Cached"]


def test_failed_runs_are_not_cached(harness: TestHarness) -> None:
    attempts: list[int] = []

    @task(cache_policy=INPUTS)
    def sometimes(x: int) -> int:
        attempts.append(x)
        if len(attempts) == 1:
            raise ValueError("first time fails")
        return x

    assert in_flow(sometimes, 3).is_failed()
    state = in_flow(sometimes, 3)
    assert state.name == "Completed"
    assert state.result() == 3
    assert len(attempts) == 2


def test_cached_task_persists_its_result_without_persist_result(harness: TestHarness) -> None:
    in_flow(task(cache_policy=INPUTS)(Counter(lambda n: "stored")), 1)
    run = last_task_run(harness)
    assert run.result_record is not None
    assert stored_path(run).read_bytes() == b'"stored"'


# Policies


def test_inputs_policy_misses_on_different_inputs(harness: TestHarness) -> None:
    counter = Counter()
    cached = task(cache_policy=INPUTS)(counter)
    assert in_flow(cached, 1).result() == 1
    assert in_flow(cached, 2).result() == 2
    assert in_flow(cached, 1).name == "Cached"
    assert counter.calls == 2


def test_inputs_policy_uses_bound_arguments_with_defaults(harness: TestHarness) -> None:
    counter = Counter()

    @task(cache_policy=INPUTS)
    def scaled(x: int, factor: int = 2) -> int:
        return counter()

    in_flow(scaled, 1)
    assert in_flow(scaled, 1, 2).name == "Cached"
    assert in_flow(scaled, x=1, factor=2).name == "Cached"
    assert in_flow(scaled, 1, 3).name == "Completed"
    assert counter.calls == 2


def test_inputs_policy_is_per_task(harness: TestHarness) -> None:
    # Unlike Prefect's INPUTS, the key includes the task, so two tasks with the same
    # arguments do not share a cache entry.
    first = task(cache_policy=INPUTS, name="first")(Counter(lambda n: "first"))
    second = task(cache_policy=INPUTS, name="second")(Counter(lambda n: "second"))
    assert in_flow(first, 1).result() == "first"
    state = in_flow(second, 1)
    assert state.name == "Completed"
    assert state.result() == "second"


def test_inputs_minus_a_parameter_ignores_it(harness: TestHarness) -> None:
    counter = Counter()

    @task(cache_policy=INPUTS - "verbose")
    def fetch(url: str, verbose: bool = False) -> int:
        return counter()

    in_flow(fetch, "a", verbose=False)
    assert in_flow(fetch, "a", verbose=True).name == "Cached"
    assert in_flow(fetch, "b", verbose=False).name == "Completed"
    assert counter.calls == 2


def test_inputs_minus_several_parameters() -> None:
    policy = INPUTS - "a" - "b"
    assert policy.exclude == frozenset({"a", "b"})
    assert repr(policy) == "INPUTS - ['a', 'b']"
    assert INPUTS.exclude == frozenset()


def test_task_source_ignores_inputs(harness: TestHarness) -> None:
    counter = Counter()

    @task(cache_policy=TASK_SOURCE)
    def constant(x: int) -> int:
        return counter()

    in_flow(constant, 1)
    state = in_flow(constant, 2)
    assert state.name == "Cached"
    assert state.result() == 1
    assert counter.calls == 1


def test_task_source_differs_between_functions(harness: TestHarness) -> None:
    @task(cache_policy=TASK_SOURCE)
    def one() -> int:
        return 1

    @task(cache_policy=TASK_SOURCE)
    def two() -> int:
        return 2

    assert in_flow(one).result() == 1
    state = in_flow(two)
    assert state.name == "Completed"
    assert state.result() == 2


def test_flow_parameters_policy(harness: TestHarness) -> None:
    counter = Counter()
    cached = task(cache_policy=FLOW_PARAMETERS)(counter)
    states: list[State] = []

    @flow
    def pipeline(day: str, task_arg: int) -> None:
        states.append(cached(task_arg, return_state=True))

    pipeline("mon", 1)
    pipeline("mon", 2)  # flow parameters differ (task_arg is one of them)
    pipeline("mon", 2)
    pipeline("tue", 2)
    assert [s.name for s in states] == ["Completed", "Completed", "Cached", "Completed"]
    assert counter.calls == 3


def test_flow_parameters_policy_ignores_task_inputs(harness: TestHarness) -> None:
    counter = Counter()
    cached = task(cache_policy=FLOW_PARAMETERS)(counter)

    @flow
    def pipeline(day: str) -> list[int]:
        return [cached(1), cached(2)]

    assert pipeline("mon") == [1, 1]
    assert counter.calls == 1


def test_run_id_policy_isolates_flow_runs(harness: TestHarness) -> None:
    counter = Counter()
    cached = task(cache_policy=RUN_ID)(counter)

    @flow
    def pipeline() -> list[int]:
        return [cached(1), cached(2)]

    assert pipeline() == [1, 1]
    assert pipeline() == [2, 2]
    assert counter.calls == 2


def test_inputs_plus_run_id(harness: TestHarness) -> None:
    counter = Counter()
    cached = task(cache_policy=INPUTS + RUN_ID)(counter)

    @flow
    def pipeline() -> list[int]:
        return [cached(1), cached(1), cached(2)]

    assert pipeline() == [1, 1, 2]
    assert pipeline() == [3, 3, 4]


def test_run_id_outside_a_flow_does_not_cache(harness: TestHarness) -> None:
    counter = Counter()
    cached = task(cache_policy=RUN_ID)(counter)
    assert cached(1) == 1
    assert cached(1) == 2


def test_default_policy_is_inputs_task_source_and_run_id() -> None:
    assert isinstance(DEFAULT, CompoundCachePolicy)
    assert DEFAULT.policies == (INPUTS, TASK_SOURCE, RUN_ID)


def test_none_policy_never_caches(harness: TestHarness) -> None:
    counter = Counter()
    uncached = task(cache_policy=NONE)(counter)
    in_flow(uncached, 1)
    state = in_flow(uncached, 1)
    assert state.name == "Completed"
    assert counter.calls == 2
    run = last_task_run(harness)
    assert run.cache_key is None
    assert run.result_record is None


def test_no_policy_by_default(harness: TestHarness) -> None:
    counter = Counter()
    plain = task(counter)
    assert plain.cache_policy is NONE
    in_flow(plain, 1)
    in_flow(plain, 1)
    assert counter.calls == 2


# Composition


def test_adding_policies_flattens_them() -> None:
    combined = INPUTS + TASK_SOURCE + FLOW_PARAMETERS
    assert isinstance(combined, CompoundCachePolicy)
    assert combined.policies == (INPUTS, TASK_SOURCE, FLOW_PARAMETERS)
    assert repr(combined) == "INPUTS + TASK_SOURCE + FLOW_PARAMETERS"
    nested = (INPUTS + TASK_SOURCE) + (RUN_ID + FLOW_PARAMETERS)
    assert nested.policies == (INPUTS, TASK_SOURCE, RUN_ID, FLOW_PARAMETERS)


def test_adding_something_else_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        _ = INPUTS + "TASK_SOURCE"  # type: ignore[operator]


def test_compound_policy_with_only_none_parts_does_not_cache(harness: TestHarness) -> None:
    counter = Counter()
    cached = task(cache_policy=NONE + RUN_ID)(counter)
    # Outside a flow RUN_ID gives no key and NONE never does: no caching at all.
    cached(1)
    cached(1)
    assert counter.calls == 2


def test_compound_policy_ignores_none_parts(harness: TestHarness) -> None:
    counter = Counter()
    cached = task(cache_policy=INPUTS + NONE)(counter)
    in_flow(cached, 1)
    assert in_flow(cached, 1).name == "Cached"
    assert counter.calls == 1


# cache_key_fn and task_input_hash


def test_cache_key_fn_decides_the_key(harness: TestHarness) -> None:
    counter = Counter()
    seen: list[tuple[Any, dict[str, Any]]] = []

    def by_user(context: Any, parameters: dict[str, Any]) -> str:
        seen.append((context, parameters))
        return f"user-{parameters['user']}"

    @task(cache_key_fn=by_user)
    def profile(user: str, page: int) -> int:
        return counter()

    in_flow(profile, "ada", 1)
    assert in_flow(profile, "ada", 2).name == "Cached"
    assert in_flow(profile, "bob", 1).name == "Completed"
    assert counter.calls == 2
    context, parameters = seen[0]
    assert context.task is profile
    assert parameters == {"user": "ada", "page": 1}
    assert context.task_run.task_name == "profile"


def test_cache_key_fn_returning_none_does_not_cache(harness: TestHarness) -> None:
    counter = Counter()
    uncached = task(cache_key_fn=lambda context, parameters: None)(counter)
    in_flow(uncached, 1)
    in_flow(uncached, 1)
    assert counter.calls == 2
    assert last_task_run(harness).cache_key is None


def test_task_input_hash(harness: TestHarness) -> None:
    counter = Counter()
    cached = task(cache_key_fn=task_input_hash)(counter)
    in_flow(cached, 1, flag=True)
    assert in_flow(cached, 1, flag=True).name == "Cached"
    assert in_flow(cached, 1, flag=False).name == "Completed"
    assert counter.calls == 2


def test_task_input_hash_differs_between_tasks(harness: TestHarness) -> None:
    first = task(cache_key_fn=task_input_hash, name="first")(Counter(lambda n: "first"))
    second = task(cache_key_fn=task_input_hash, name="second")(Counter(lambda n: "second"))
    in_flow(first, 1)
    assert in_flow(second, 1).result() == "second"


# Expiry, refresh, missing results


def test_cache_expiration_gives_a_miss_once_expired(harness: TestHarness) -> None:
    counter = Counter()
    cached = task(cache_policy=INPUTS, cache_expiration=timedelta(seconds=60))(counter)

    started = harness.clock.now()
    in_flow(cached, 1)
    first = last_task_run(harness)
    assert first.cache_expiration == started + timedelta(seconds=60)

    harness.clock.advance(59)  # type: ignore[attr-defined]
    assert in_flow(cached, 1).name == "Cached"
    harness.clock.advance(2)  # type: ignore[attr-defined]
    state = in_flow(cached, 1)
    assert state.name == "Completed"
    assert state.result() == 2
    assert counter.calls == 2


def test_expired_entry_is_replaced_by_the_new_result(harness: TestHarness) -> None:
    counter = Counter()
    cached = task(cache_policy=INPUTS, cache_expiration=timedelta(minutes=1))(counter)
    in_flow(cached, 1)
    harness.clock.advance(120)  # type: ignore[attr-defined]
    in_flow(cached, 1)
    state = in_flow(cached, 1)
    assert state.name == "Cached"
    assert state.result() == 2


def test_no_expiration_means_forever(harness: TestHarness) -> None:
    cached = task(cache_policy=INPUTS)(Counter())
    in_flow(cached, 1)
    harness.clock.advance(10 * 365 * 24 * 3600)  # type: ignore[attr-defined]
    assert in_flow(cached, 1).name == "Cached"
    assert last_task_run(harness).cache_expiration is None


def test_refresh_cache_reruns_and_overwrites(harness: TestHarness) -> None:
    counter = Counter(lambda n: f"v{n}")
    cached = task(cache_policy=INPUTS)(counter)

    assert in_flow(cached, 1).result() == "v1"
    refreshed = in_flow(cached.with_options(refresh_cache=True), 1)
    assert refreshed.name == "Completed"
    assert refreshed.result() == "v2"
    state = in_flow(cached, 1)
    assert state.name == "Cached"
    assert state.result() == "v2"
    assert counter.calls == 2


def test_refresh_cache_always_runs(harness: TestHarness) -> None:
    counter = Counter()
    refreshing = task(cache_policy=INPUTS, refresh_cache=True)(counter)
    in_flow(refreshing, 1)
    in_flow(refreshing, 1)
    assert counter.calls == 2


def test_deleted_stored_result_is_a_miss(harness: TestHarness) -> None:
    counter = Counter()
    cached = task(cache_policy=INPUTS)(counter)
    in_flow(cached, 1)
    path = stored_path(last_task_run(harness))
    assert path.exists()
    path.unlink()

    state = in_flow(cached, 1)
    assert state.name == "Completed"
    assert state.result() == 2
    assert path.exists()
    assert in_flow(cached, 1).name == "Cached"


# Values that JSON cannot hold


@pytest.mark.parametrize(
    "value",
    [
        {1, 2, 3},
        Point(1, 2),
        (1, "two"),
        {1: "int key"},
        float("inf"),
        b"bytes",
    ],
    ids=["set", "custom-class", "tuple", "int-keys", "inf", "bytes"],
)
def test_non_json_results_are_cached_with_cloudpickle(harness: TestHarness, value: Any) -> None:
    counter = Counter(lambda n: value)
    cached = task(cache_policy=INPUTS)(counter)

    assert in_flow(cached, 1).result() == value
    state = in_flow(cached, 1)
    assert state.name == "Cached"
    result = state.result()
    assert result == value
    assert type(result) is type(value)
    assert counter.calls == 1
    record = last_task_run(harness).result_record
    assert record is not None
    assert record.serializer == "cloudpickle"


def test_non_json_inputs_can_be_cache_keys(harness: TestHarness) -> None:
    counter = Counter()
    cached = task(cache_policy=INPUTS)(counter)
    in_flow(cached, {3, 1}, Point(1, 2))
    assert in_flow(cached, {1, 3}, Point(1, 2)).name == "Cached"
    assert in_flow(cached, {1, 3}, Point(2, 2)).name == "Completed"


def test_custom_result_storage_is_used_for_cached_results(
    harness: TestHarness, tmp_path: Path
) -> None:
    counter = Counter(lambda n: [n])
    cached = task(cache_policy=INPUTS, result_storage=tmp_path)(counter)
    in_flow(cached, 1)
    path = stored_path(last_task_run(harness))
    # Cached results live apart from the runs' own folders: `cache/<cache key>`.
    assert path.parent == tmp_path / "cache"
    assert in_flow(cached, 1).result() == [1]


# Cache stores


def record_in(store: ResultStore, key: str = "r") -> ResultRecord:
    store.write(key, b"1")
    return ResultRecord(store=store, key=key, serializer="json")


@pytest.fixture(params=["memory", "local-file"])
def cache_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        return MemoryCacheStore()
    return LocalFileCacheStore(tmp_path / "cache")


def test_cache_store_put_get_delete(cache_store: Any, tmp_path: Path) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    record = record_in(LocalFileSystemResultStore(tmp_path / "results"))
    assert cache_store.get("abc123", now) is None
    cache_store.put(CacheEntry(key="abc123", result=record, task_run_id="t1"))
    entry = cache_store.get("abc123", now)
    assert entry is not None
    assert entry.result == record
    assert entry.result.load() == 1
    assert entry.task_run_id == "t1"
    cache_store.delete("abc123")
    assert cache_store.get("abc123", now) is None
    cache_store.delete("abc123")  # deleting twice is fine


def test_cache_store_expiry(cache_store: Any, tmp_path: Path) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    record = record_in(LocalFileSystemResultStore(tmp_path / "results"))
    expires = now + timedelta(seconds=10)
    cache_store.put(CacheEntry(key="k-1", result=record, expiration=expires))
    entry = cache_store.get("k-1", now + timedelta(seconds=9))
    assert entry is not None
    assert entry.expiration == expires
    assert cache_store.get("k-1", expires) is None
    assert cache_store.get("k-1", now + timedelta(seconds=11)) is None


def test_local_file_cache_store_rejects_unsafe_keys(tmp_path: Path) -> None:
    store = LocalFileCacheStore(tmp_path)
    with pytest.raises(ValueError, match="letters, digits"):
        store.get("../escape", datetime(2026, 1, 1, tzinfo=UTC))


def test_local_file_cache_store_is_shared_between_instances(tmp_path: Path) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    record = record_in(LocalFileSystemResultStore(tmp_path / "results"))
    LocalFileCacheStore(tmp_path / "cache").put(CacheEntry(key="shared", result=record))
    entry = LocalFileCacheStore(tmp_path / "cache").get("shared", now)
    assert entry is not None
    assert entry.result.load() == 1


def test_local_file_cache_store_needs_a_local_result_store(tmp_path: Path) -> None:
    class OtherStore(ResultStore):
        def write(self, key: str, data: bytes) -> None:
            pass

        def read(self, key: str) -> bytes:
            return b""

        def exists(self, key: str) -> bool:
            return True

        def uri(self, key: str) -> str:
            return f"other://{key}"

    entry = CacheEntry(key="k", result=ResultRecord(OtherStore(), "k", "json"))
    with pytest.raises(TypeError, match="LocalFileSystemResultStore"):
        LocalFileCacheStore(tmp_path).put(entry)


def test_stable_hash_tells_tuples_from_lists_and_int_keys_from_str_keys():
    from stratoflow.results import stable_hash

    assert stable_hash((1, 2)) != stable_hash([1, 2])
    assert stable_hash({1: "a"}) != stable_hash({"1": "a"})
    assert stable_hash({"b": 1, "a": 2}) == stable_hash({"a": 2, "b": 1})
