"""Results: serializers, the local result store, records, and persisting run results."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stratoflow import flow, task
from stratoflow.exceptions import ObjectNotFound, OptionError
from stratoflow.results import (
    AutoSerializer,
    JSONSerializer,
    LocalFileSystemResultStore,
    PickleSerializer,
    ResultRecord,
    coerce_result_store,
    persist,
    serialize,
    serializer_for,
    stable_hash,
)
from stratoflow.states import State
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


@pytest.fixture
def store(tmp_path: Path) -> LocalFileSystemResultStore:
    return LocalFileSystemResultStore(tmp_path / "store")


@dataclass
class Thing:
    name: str
    size: int


def deeply_nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def in_flow(the_task: Any, *args: Any, **kwargs: Any) -> State:
    states: list[State] = []

    @flow
    def wrapper() -> None:
        states.append(the_task(*args, return_state=True, **kwargs))

    wrapper()
    return states[0]


# Serializers


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -7,
        2.5,
        "text",
        "",
        [],
        {},
        [1, "a", None, [2.0]],
        {"a": {"b": [1, 2, {"c": False}]}},
    ],
)
def test_auto_uses_json_for_plain_json_values(value: Any) -> None:
    name, data = serialize(value)
    assert name == "json"
    assert json.loads(data) == value
    assert serializer_for(name).loads(data) == value


@pytest.mark.parametrize(
    "value",
    [
        (1, 2),
        {1, 2},
        frozenset({"a"}),
        Thing("box", 3),
        float("nan"),
        float("inf"),
        {1: "int key"},
        b"bytes",
        [1, (2, 3)],
        {"nested": {"a", "b"}},
        deeply_nested(100),
    ],
    ids=[
        "tuple",
        "set",
        "frozenset",
        "object",
        "nan",
        "inf",
        "int-keys",
        "bytes",
        "tuple-in-list",
        "set-in-dict",
        "too-deep",
    ],
)
def test_auto_uses_cloudpickle_for_everything_else(value: Any) -> None:
    name, data = serialize(value)
    assert name == "cloudpickle"
    loaded = serializer_for(name).loads(data)
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(loaded)
    else:
        assert loaded == value
        assert type(loaded) is type(value)


def test_auto_keeps_a_tuple_a_tuple() -> None:
    # JSON would turn it into a list; cloudpickle keeps the type.
    name, data = serialize((1, 2))
    assert serializer_for(name).loads(data) == (1, 2)


def test_auto_json_for_moderately_nested_values() -> None:
    assert serialize(deeply_nested(30))[0] == "json"


def test_json_serializer_is_compact() -> None:
    assert JSONSerializer().dumps({"a": [1, 2]}) == b'{"a":[1,2]}'


def test_json_serializer_rejects_nan() -> None:
    with pytest.raises(ValueError):
        JSONSerializer().dumps(float("nan"))


def test_json_serializer_rejects_non_json_values() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        serialize({1, 2}, "json")


def test_explicit_cloudpickle_for_a_plain_value() -> None:
    name, data = serialize([1, 2], "cloudpickle")
    assert name == "cloudpickle"
    assert PickleSerializer().loads(data) == [1, 2]


def test_explicit_json() -> None:
    assert serialize({"a": 1}, "json") == ("json", b'{"a":1}')


def test_unknown_serializer_name() -> None:
    with pytest.raises(OptionError, match=r"Unknown result serializer 'yaml'.*'json'"):
        serializer_for("yaml")
    with pytest.raises(OptionError):
        serialize(1, "yaml")


def test_auto_serializer_is_not_a_serializer_itself() -> None:
    with pytest.raises(NotImplementedError, match="choose"):
        AutoSerializer().dumps(1)
    with pytest.raises(NotImplementedError):
        AutoSerializer().loads(b"1")
    assert AutoSerializer.choose(1).name == "json"
    assert AutoSerializer.choose((1,)).name == "cloudpickle"


# LocalFileSystemResultStore


def test_store_write_read_exists(store: LocalFileSystemResultStore) -> None:
    assert not store.exists("abc")
    store.write("abc", b"payload")
    assert store.exists("abc")
    assert store.read("abc") == b"payload"
    assert (store.basepath / "abc").read_bytes() == b"payload"


def test_store_overwrites(store: LocalFileSystemResultStore) -> None:
    store.write("k", b"one")
    store.write("k", b"two")
    assert store.read("k") == b"two"


def test_store_creates_nested_directories(store: LocalFileSystemResultStore) -> None:
    store.write("a/b/c.json", b"{}")
    assert store.read("a/b/c.json") == b"{}"
    assert (store.basepath / "a" / "b" / "c.json").is_file()


def test_store_leaves_no_temporary_files(store: LocalFileSystemResultStore) -> None:
    store.write("k", b"data")
    assert [p.name for p in store.basepath.iterdir()] == ["k"]


def test_store_uri(store: LocalFileSystemResultStore) -> None:
    uri = store.uri("dir/key")
    assert uri.startswith("file://")
    assert uri.endswith("/store/dir/key")
    assert uri == (store.basepath / "dir" / "key").resolve().as_uri()


def test_store_missing_key_raises_object_not_found(store: LocalFileSystemResultStore) -> None:
    with pytest.raises(ObjectNotFound) as info:
        store.read("missing")
    assert "No result at file://" in str(info.value)
    assert str(info.value).endswith("/missing")
    assert isinstance(info.value, LookupError)


@pytest.mark.parametrize("key", ["../outside", "a/../../outside", "/etc/passwd"])
def test_store_rejects_keys_that_escape_it(store: LocalFileSystemResultStore, key: str) -> None:
    with pytest.raises(ValueError, match="escapes the store"):
        store.write(key, b"x")
    with pytest.raises(ValueError, match="escapes the store"):
        store.read(key)
    with pytest.raises(ValueError, match="escapes the store"):
        store.exists(key)
    assert not (store.basepath.parent / "outside").exists()


def test_store_allows_dots_that_stay_inside(store: LocalFileSystemResultStore) -> None:
    store.write("a/../b", b"x")
    assert store.read("b") == b"x"


def test_store_expands_the_home_directory() -> None:
    assert LocalFileSystemResultStore("~/results").basepath == Path.home() / "results"


def test_store_equality(tmp_path: Path) -> None:
    a = LocalFileSystemResultStore(tmp_path)
    b = LocalFileSystemResultStore(str(tmp_path))
    assert a == b
    assert hash(a) == hash(b)
    assert a != LocalFileSystemResultStore(tmp_path / "other")
    assert repr(a) == f"LocalFileSystemResultStore({str(tmp_path)!r})"


# Records and persist()


def test_persist_writes_and_the_record_loads(store: LocalFileSystemResultStore) -> None:
    record = persist({"a": 1}, store, key="out")
    assert record == ResultRecord(store=store, key="out", serializer="json")
    assert store.read("out") == b'{"a":1}'
    assert record.load() == {"a": 1}
    assert record.uri == store.uri("out")


def test_persist_without_a_key_makes_a_unique_one(store: LocalFileSystemResultStore) -> None:
    first = persist(1, store)
    second = persist(1, store)
    assert first.key != second.key
    assert len(first.key) == 32


def test_persist_picks_cloudpickle_for_objects(store: LocalFileSystemResultStore) -> None:
    record = persist(Thing("x", 1), store, key="thing")
    assert record.serializer == "cloudpickle"
    assert record.load() == Thing("x", 1)


def test_persist_with_json_and_a_non_json_value_writes_nothing(
    store: LocalFileSystemResultStore,
) -> None:
    with pytest.raises(TypeError):
        persist({1}, store, key="k", serializer="json")
    assert not store.exists("k")


def test_loading_a_deleted_result_raises_object_not_found(
    store: LocalFileSystemResultStore,
) -> None:
    record = persist(1, store, key="gone")
    (store.basepath / "gone").unlink()
    with pytest.raises(ObjectNotFound):
        record.load()


def test_coerce_result_store(tmp_path: Path) -> None:
    existing = LocalFileSystemResultStore(tmp_path)
    assert coerce_result_store(None) is None
    assert coerce_result_store(existing) is existing
    assert coerce_result_store(str(tmp_path)) == existing
    assert coerce_result_store(tmp_path) == existing


def test_coerce_result_store_rejects_other_values() -> None:
    with pytest.raises(OptionError, match=r"ResultStore or a directory path, got int"):
        coerce_result_store(3)  # type: ignore[arg-type]


def test_stable_hash() -> None:
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})
    assert stable_hash(1, 2) != stable_hash(2, 1)
    assert stable_hash("ab", "c") != stable_hash("a", "bc")
    assert stable_hash({1, 2}) == stable_hash({2, 1})
    assert len(stable_hash("x")) == 32


# Persisting task and flow results


def test_task_results_are_not_persisted_by_default(harness: TestHarness) -> None:
    in_flow(task(lambda: 1))
    assert harness.task_runs()[0].result_record is None


def test_persist_result_on_a_task(harness: TestHarness) -> None:
    @task(persist_result=True)
    def compute(x: int) -> dict[str, int]:
        return {"square": x * x}

    state = in_flow(compute, 3)
    (run,) = harness.task_runs()
    record = run.result_record
    assert record is not None
    assert record.serializer == "json"
    assert record.load() == {"square": 9}
    assert state.result_record == record
    assert record.store == harness.services.result_store
    assert Path(record.uri.removeprefix("file://")).is_file()


def test_persisted_non_json_task_result(harness: TestHarness) -> None:
    @task(persist_result=True)
    def make() -> Thing:
        return Thing("crate", 2)

    in_flow(make)
    record = harness.task_runs()[0].result_record
    assert record is not None
    assert record.serializer == "cloudpickle"
    assert record.load() == Thing("crate", 2)


def test_persist_result_on_a_flow(harness: TestHarness) -> None:
    @task
    def step(x: int) -> int:
        return x + 1

    @flow(persist_result=True)
    def pipeline(x: int) -> list[int]:
        return [step(x), step(x + 1)]

    assert pipeline(1) == [2, 3]
    flow_run = harness.last_flow_run()
    assert flow_run.result_record is not None
    assert flow_run.result_record.load() == [2, 3]
    # Tasks inherit the flow's setting.
    assert [r.result_record.load() for r in harness.task_runs() if r.result_record] == [2, 3]


def test_task_persist_result_false_overrides_the_flow(harness: TestHarness) -> None:
    @task(persist_result=False)
    def step() -> int:
        return 1

    @flow(persist_result=True)
    def pipeline() -> int:
        return step()

    pipeline()
    assert harness.task_runs()[0].result_record is None
    assert harness.last_flow_run().result_record is not None


def test_task_result_storage_path(harness: TestHarness, tmp_path: Path) -> None:
    @task(persist_result=True, result_storage=str(tmp_path / "mine"))
    def step() -> str:
        return "here"

    in_flow(step)
    record = harness.task_runs()[0].result_record
    assert record is not None
    assert record.store == LocalFileSystemResultStore(tmp_path / "mine")
    assert (tmp_path / "mine" / record.key).read_bytes() == b'"here"'


def test_task_result_storage_store(harness: TestHarness, store: LocalFileSystemResultStore) -> None:
    in_flow(task(persist_result=True, result_storage=store)(lambda: 5))
    record = harness.task_runs()[0].result_record
    assert record is not None
    assert record.store is store
    assert store.read(record.key) == b"5"


def test_tasks_inherit_the_flows_result_storage(harness: TestHarness, tmp_path: Path) -> None:
    @task
    def step() -> int:
        return 7

    @flow(persist_result=True, result_storage=tmp_path / "flow-results")
    def pipeline() -> int:
        return step()

    pipeline()
    record = harness.task_runs()[0].result_record
    assert record is not None
    assert record.store == LocalFileSystemResultStore(tmp_path / "flow-results")
    flow_record = harness.last_flow_run().result_record
    assert flow_record is not None
    assert flow_record.store == record.store


def test_result_storage_key_template(harness: TestHarness) -> None:
    @task(persist_result=True, result_storage_key="out-{parameters[x]}")
    def compute(x: int) -> int:
        return x * 10

    in_flow(compute, 3)
    in_flow(compute, 4)
    keys = []
    for flow_run in reversed(harness.flow_runs()):
        (run,) = harness.task_runs(flow_run.id)
        assert run.result_record is not None
        keys.append(run.result_record.key)
    assert keys == ["out-3", "out-4"]
    store = harness.services.result_store
    assert store.read("out-3") == b"30"
    assert store.read("out-4") == b"40"


def test_result_storage_key_can_use_the_task_run(harness: TestHarness) -> None:
    @task(
        persist_result=True,
        task_run_name="part-{n}",
        result_storage_key="{flow_run.name}/{task_run.name}.json",
    )
    def part(n: int) -> int:
        return n

    in_flow(part, 2)
    record = harness.task_runs()[0].result_record
    assert record is not None
    assert record.key == f"{harness.last_flow_run().name}/part-2.json"
    assert record.load() == 2


def test_result_storage_key_overwrites_the_same_key(harness: TestHarness) -> None:
    calls: list[int] = []

    @task(persist_result=True, result_storage_key="latest")
    def step() -> int:
        calls.append(1)
        return len(calls)

    in_flow(step)
    in_flow(step)
    assert harness.services.result_store.read("latest") == b"2"


def test_flow_result_storage_key_template(harness: TestHarness) -> None:
    @flow(persist_result=True, result_storage_key="report-{parameters[day]}")
    def report(day: str) -> dict[str, str]:
        return {"day": day}

    report("mon")
    record = harness.last_flow_run().result_record
    assert record is not None
    assert record.key == "report-mon"
    assert record.load() == {"day": "mon"}


def test_bad_result_storage_key_fails_the_task_clearly(harness: TestHarness) -> None:
    @task(persist_result=True, result_storage_key="out-{parameters[y]}")
    def compute(x: int) -> int:
        return x

    state = in_flow(compute, 1)
    assert state.is_failed()
    message = state.message or ""
    assert "'out-{parameters[y]}'" in message
    assert "result_storage_key" in message
    assert "KeyError" in message


def test_json_serializer_with_a_non_json_value_fails_the_task(harness: TestHarness) -> None:
    @task(persist_result=True, result_serializer="json")
    def make() -> set[int]:
        return {1, 2}

    state = in_flow(make)
    assert state.is_failed()
    assert state.name == "Failed"
    message = state.message or ""
    assert "could not be persisted" in message
    assert "Object of type set is not JSON serializable" in message
    assert "result_serializer='json'" in message
    assert "'cloudpickle'" in message
    assert isinstance(state.result(raise_on_failure=False), TypeError)
    assert harness.task_runs()[0].result_record is None


def test_json_serializer_failure_raises_in_the_flow(harness: TestHarness) -> None:
    @task(persist_result=True, result_serializer="json")
    def make() -> float:
        return float("nan")

    @flow
    def pipeline() -> float:
        return make()

    with pytest.raises(ValueError, match="JSON"):
        pipeline()


def test_json_serializer_with_a_json_value(harness: TestHarness) -> None:
    in_flow(task(persist_result=True, result_serializer="json")(lambda: [1, 2]))
    record = harness.task_runs()[0].result_record
    assert record is not None
    assert record.serializer == "json"
    assert record.load() == [1, 2]


def test_cloudpickle_serializer_for_a_plain_value(harness: TestHarness) -> None:
    in_flow(task(persist_result=True, result_serializer="cloudpickle")(lambda: {"a": 1}))
    record = harness.task_runs()[0].result_record
    assert record is not None
    assert record.serializer == "cloudpickle"
    assert record.load() == {"a": 1}


def test_unpicklable_result_fails_the_task(harness: TestHarness) -> None:
    import threading

    @task(persist_result=True)
    def make() -> Any:
        return threading.Lock()

    state = in_flow(make)
    assert state.is_failed()
    assert "could not be persisted" in (state.message or "")


def test_result_of_a_persisted_state_loads_from_the_store(harness: TestHarness) -> None:
    state = in_flow(task(persist_result=True)(lambda: "stored"))
    assert state.result_record is not None
    reloaded = State(type=state.type, name=state.name, result_record=state.result_record)
    assert reloaded.result() == "stored"
