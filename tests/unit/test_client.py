"""`get_client()` on the memory backend: Prefect's client methods over the SDK functions,
sync and async. No I/O: the test harness's memory backend and fake clock."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import stratoflow
from stratoflow import flow, get_run_logger, runs, tags, task
from stratoflow.artifacts import create_markdown_artifact, create_table_artifact
from stratoflow.client.orchestration import (
    HelloResponse,
    PrefectClient,
    StratoClient,
    SyncPrefectClient,
    SyncStratoClient,
    UnsupportedClientMethod,
    get_client,
)
from stratoflow.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
    VariableCreate,
    VariableUpdate,
)
from stratoflow.client.schemas.filters import (
    ArtifactFilter,
    FlowFilter,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    LogFilter,
    TaskRunFilter,
    UnsupportedFilter,
)
from stratoflow.client.schemas.responses import SetStateStatus
from stratoflow.client.schemas.sorting import FlowRunSort, LogSort
from stratoflow.concurrency import ConcurrencyLimitExists, ConcurrencyLimitNotFound
from stratoflow.exceptions import ObjectNotFound
from stratoflow.models import FlowRun
from stratoflow.platform import BackendNotConfigured
from stratoflow.records import VariableAlreadyExists
from stratoflow.run_ids import new_flow_run_id
from stratoflow.states import Completed, Running, State, StateType
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


@pytest.fixture
def client() -> Iterator[SyncStratoClient]:
    with get_client(sync_client=True) as found:
        yield found


@task
def double(x: int) -> int:
    get_run_logger().warning("doubling %s", x)
    return 2 * x


@flow
def pipeline(x: int) -> int:
    get_run_logger().info("starting")
    return double(x) + double(x + 1)


@flow
def broken() -> None:
    raise ValueError("no")


def running_run(harness: TestHarness, name: str = "live") -> FlowRun:
    run = FlowRun(
        id=new_flow_run_id(),
        name=name,
        flow_name="pipeline",
        state=Running(),
        created=harness.clock.now(),
        version=1,
    )
    return harness.backend.create_flow_run(run)


# Getting a client


def test_get_client_is_importable_from_prefects_paths() -> None:
    assert stratoflow.get_client is get_client
    assert PrefectClient is StratoClient and SyncPrefectClient is SyncStratoClient
    assert isinstance(get_client(), StratoClient)
    assert isinstance(get_client(httpx_settings={"timeout": 5}), StratoClient)
    assert isinstance(get_client(sync_client=True), SyncStratoClient)
    with pytest.raises(RuntimeError, match=r"async with get_client\(\)"), get_client():
        pass


def test_every_sync_method_is_a_coroutine_on_the_async_client() -> None:
    public = [n for n, _ in inspect.getmembers(SyncStratoClient, inspect.isfunction) if n[0] != "_"]
    assert {"read_flow_runs", "set_flow_run_state", "read_logs", "hello"} <= set(public)
    for name in public:
        assert inspect.iscoroutinefunction(getattr(StratoClient, name)), name
    assert inspect.signature(StratoClient.read_flow_runs) == inspect.signature(
        SyncStratoClient.read_flow_runs
    )


def test_the_async_client_runs_each_call_in_a_worker_thread(
    harness: TestHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = pipeline(1) and harness.last_flow_run().id
    threads: list[int] = []
    reading = runs.read_flow_run

    def spy(flow_run_id: str) -> FlowRun:
        threads.append(threading.get_ident())
        return reading(flow_run_id)

    monkeypatch.setattr(runs, "read_flow_run", spy)

    async def main() -> tuple[FlowRun, int]:
        async with get_client() as client:
            return await client.read_flow_run(run_id), threading.get_ident()

    found, loop_thread = asyncio.run(main())
    assert found.id == run_id and found.state is not None and found.state.is_completed()
    assert threads and threads[0] != loop_thread  # the event loop was free meanwhile


def test_hello_and_the_healthcheck(
    harness: TestHarness, client: SyncStratoClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    hello = client.hello()
    assert isinstance(hello, HelloResponse)
    assert (hello.status_code, hello.json()) == (200, "👋")
    assert client.api_healthcheck() is None
    assert client.api_version() == stratoflow.__version__

    def unreachable(**_: Any) -> list[FlowRun]:
        raise OSError("connection refused")

    monkeypatch.setattr(harness.backend, "list_flow_runs", unreachable)
    failure = client.api_healthcheck()
    assert isinstance(failure, OSError) and "refused" in str(failure)


def test_a_prefect_method_without_counterpart_says_what_to_use(client: SyncStratoClient) -> None:
    with pytest.raises(UnsupportedClientMethod, match=r"create_flow_run is not supported: a flow"):
        client.create_flow_run  # noqa: B018 - the attribute lookup raises
    with pytest.raises(AttributeError, match=r"has no method 'read_block_schemas'.*docs/sdk.md"):
        client.read_block_schemas  # noqa: B018
    assert not hasattr(client, "update_deployment")
    with pytest.raises(UnsupportedClientMethod, match=r"stratoflow.yaml"):
        get_client().delete_deployment  # noqa: B018


# Flow runs


def test_read_flow_runs_by_prefect_filters_limit_offset_and_sort(
    harness: TestHarness, client: SyncStratoClient
) -> None:
    with tags("etl"):
        pipeline(1)
    first = harness.last_flow_run()
    harness.clock.sleep(60)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="no"):
        broken()
    failed = harness.last_flow_run()
    harness.clock.sleep(60)  # type: ignore[attr-defined]
    pipeline(2)
    last = harness.last_flow_run()

    assert [r.id for r in client.read_flow_runs()] == [last.id, failed.id, first.id]
    completed = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))
    )
    found = client.read_flow_runs(flow_run_filter=completed)
    assert [r.id for r in found] == [last.id, first.id]
    assert [r.id for r in client.read_flow_runs(flow_run_filter=completed, limit=1)] == [last.id]
    assert [r.id for r in client.read_flow_runs(limit=1, offset=1)] == [failed.id]
    by_name = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(state={"name": {"any_": ["Failed"]}})
    )
    assert [r.id for r in by_name] == [failed.id]
    tagged = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags={"all_": ["etl"]}))
    assert [r.id for r in tagged] == [first.id]
    of_flow = client.read_flow_runs(flow_filter=FlowFilter(name={"any_": ["broken"]}))
    assert [r.id for r in of_flow] == [failed.id]
    oldest_first = client.read_flow_runs(sort=FlowRunSort.START_TIME_ASC)
    assert [r.id for r in oldest_first] == [first.id, failed.id, last.id]
    assert client.count_flow_runs(flow_run_filter=completed) == 2
    with pytest.raises(UnsupportedFilter, match=r"read_task_runs"):
        client.read_flow_runs(task_run_filter=TaskRunFilter())


def test_a_single_state_type_reads_that_states_index(
    harness: TestHarness, client: SyncStratoClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline(1)
    asked: list[StateType] = []
    listing = harness.backend.list_flow_runs_by_state

    def spy(state_type: StateType, **kwargs: Any) -> list[FlowRun]:
        asked.append(state_type)
        return listing(state_type, **kwargs)

    monkeypatch.setattr(harness.backend, "list_flow_runs_by_state", spy)
    found = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(state={"type": {"any_": ["COMPLETED"]}})
    )
    assert len(found) == 1 and asked == [StateType.COMPLETED]


def test_setting_a_state_accepts_rejects_and_forces_as_prefects_server(
    harness: TestHarness, client: SyncStratoClient
) -> None:
    pipeline(1)
    done = harness.last_flow_run()
    refused = client.set_flow_run_state(done.id, Running())
    assert refused.status is SetStateStatus.REJECT
    assert refused.state is not None and refused.state.is_completed()
    assert "final state" in (refused.details.reason or "")  # type: ignore[union-attr]
    assert runs.read_flow_run(done.id).state.is_completed()  # type: ignore[union-attr]

    proposed = State(type=StateType.CANCELLED, name="Cancelled")
    forced = client.set_flow_run_state(done.id, proposed, force=True)
    assert forced.status is SetStateStatus.ACCEPT
    assert runs.read_flow_run(done.id).state.name == "Cancelled"  # type: ignore[union-attr]
    assert forced.state is not proposed  # the caller's state is copied, not bound to the run
    states = client.read_flow_run_states(done.id)
    assert [s.name for s in states][-2:] == ["Completed", "Cancelled"]


def test_cancelling_through_the_client_is_cancel_flow_run(
    harness: TestHarness, client: SyncStratoClient
) -> None:
    live = running_run(harness)
    result = client.set_flow_run_state(live.id, State(type=StateType.CANCELLING, name="Cancelling"))
    assert result.status is SetStateStatus.ACCEPT
    assert result.state is not None and result.state.is_cancelling()
    assert result.state.message == "Cancellation requested."  # runs.cancel_flow_run's
    assert result.state.timestamp == harness.clock.now()  # on the services' clock
    again = client.set_flow_run_state(live.id, Completed())
    assert again.status is SetStateStatus.ACCEPT  # Cancelling -> Completed is allowed


def test_delete_a_flow_run(harness: TestHarness, client: SyncStratoClient) -> None:
    pipeline(1)
    run_id = harness.last_flow_run().id
    client.delete_flow_run(run_id)
    with pytest.raises(ObjectNotFound):
        client.read_flow_run(run_id)
    with pytest.raises(ObjectNotFound, match=run_id):
        client.delete_flow_run(run_id)


# Task runs and logs


def test_read_task_runs_of_named_or_filtered_flow_runs(
    harness: TestHarness, client: SyncStratoClient
) -> None:
    pipeline(1)
    run_id = harness.last_flow_run().id
    pipeline(5)
    named = client.read_task_runs(task_run_filter=TaskRunFilter(flow_run_id={"any_": [run_id]}))
    assert [t.name for t in named] == ["double-0", "double-1"]
    assert {t.flow_run_id for t in named} == {run_id}
    assert client.read_task_run(named[0].id).id == named[0].id
    one = client.read_task_runs(
        task_run_filter=TaskRunFilter(flow_run_id={"any_": [run_id]}, name={"any_": ["double-1"]})
    )
    assert [t.name for t in one] == ["double-1"]
    completed = client.read_task_runs(
        flow_run_filter=FlowRunFilter(state={"type": {"any_": ["COMPLETED"]}})
    )
    assert len(completed) == 4
    with pytest.raises(UnsupportedFilter, match=r"per flow run: pass task_run_filter"):
        client.read_task_runs()
    assert [s.name for s in client.read_task_run_states(named[0].id)][-1] == "Completed"
    refused = client.set_task_run_state(named[0].id, Running())
    assert refused.status is SetStateStatus.REJECT


def test_read_logs_of_a_flow_run_by_level_and_order(
    harness: TestHarness, client: SyncStratoClient
) -> None:
    pipeline(1)
    run_id = harness.last_flow_run().id
    warnings = client.read_logs(
        LogFilter(flow_run_id={"any_": [run_id]}, level={"ge_": 30}), sort=LogSort.TIMESTAMP_DESC
    )
    assert [e.message for e in warnings] == ["doubling 2", "doubling 1"]
    every = client.read_logs(LogFilter(flow_run_id={"any_": [run_id]}), limit=2)
    assert [e.message for e in every][1:] == ["starting"]  # oldest first, as Prefect
    with pytest.raises(UnsupportedFilter, match=r"reads logs per flow run"):
        client.read_logs()


# Variables, artifacts, concurrency limits


def test_variables(harness: TestHarness, client: SyncStratoClient) -> None:
    created = client.create_variable(VariableCreate(name="batch_size", value=500, tags=["ops"]))
    assert (created.name, created.value, created.tags) == ("batch_size", 500, ["ops"])
    assert created.created == harness.clock.now()
    with pytest.raises(VariableAlreadyExists):
        client.create_variable(VariableCreate(name="batch_size", value=1))
    client.update_variable(VariableUpdate(name="batch_size", value=800))
    stored = client.read_variable_by_name("batch_size")
    assert stored is not None and (stored.value, stored.tags) == (800, ["ops"])
    assert [v.name for v in client.read_variables()] == ["batch_size"]
    client.delete_variable_by_name("batch_size")
    assert client.read_variable_by_name("batch_size") is None
    with pytest.raises(ObjectNotFound):
        client.delete_variable_by_name("batch_size")
    with pytest.raises(ObjectNotFound):
        client.update_variable(VariableUpdate(name="batch_size", value=1))


def test_the_sync_client_works_inside_async_code(harness: TestHarness) -> None:
    async def main() -> Any:
        with get_client(sync_client=True) as client:
            client.create_variable(VariableCreate(name="x", value=1))  # not a coroutine
            return client.read_variable_by_name("x")

    assert asyncio.run(main()).value == 1


@flow
def reporting() -> None:
    create_markdown_artifact("# one", key="report")
    create_markdown_artifact("# two", key="report")
    create_table_artifact([{"rows": 1}], key="counts")


def test_read_artifacts_by_key_flow_run_and_type(
    harness: TestHarness, client: SyncStratoClient
) -> None:
    reporting()
    run_id = harness.last_flow_run().id
    versions = client.read_artifacts(artifact_filter=ArtifactFilter(key={"any_": ["report"]}))
    assert [a.data for a in versions] == ["# two", "# one"]
    of_run = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id={"any_": [run_id]}))
    assert len(of_run) == 3
    tables = client.read_artifacts(artifact_filter=ArtifactFilter(type={"any_": ["table"]}))
    assert [a.key for a in tables] == ["counts"]
    assert len(client.read_artifacts(limit=2)) == 2


def test_tag_and_global_concurrency_limits(client: SyncStratoClient, harness: TestHarness) -> None:
    client.create_concurrency_limit(tag="gpu", concurrency_limit=2)
    client.create_concurrency_limit(tag="gpu", concurrency_limit=3)  # updates, as Prefect
    assert client.read_concurrency_limit_by_tag("gpu").limit == 3
    created = client.create_global_concurrency_limit(
        GlobalConcurrencyLimitCreate(name="database", limit=5)
    )
    assert (created.name, created.limit, created.active) == ("database", 5, True)
    with pytest.raises(ConcurrencyLimitExists):
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name="database", limit=1)
        )
    assert [c.name for c in client.read_concurrency_limits(limit=10, offset=0)] == ["tag:gpu"]
    assert [c.name for c in client.read_global_concurrency_limits()] == ["database", "tag:gpu"]
    client.update_global_concurrency_limit("database", GlobalConcurrencyLimitUpdate(active=False))
    found = client.read_global_concurrency_limit_by_name("database")
    assert (found.limit, found.active) == (5, False)
    client.upsert_global_concurrency_limit_by_name("database", 7)
    client.upsert_global_concurrency_limit_by_name("api", 1, slot_decay_per_second=0.5)
    assert client.read_global_concurrency_limit_by_name("database").limit == 7
    assert client.read_global_concurrency_limit_by_name("api").is_rate_limit
    client.delete_concurrency_limit_by_tag("gpu")
    client.delete_global_concurrency_limit_by_name("api")
    with pytest.raises(ConcurrencyLimitNotFound):
        client.read_concurrency_limit_by_tag("gpu")


# Deployments


def test_deployments_need_the_aws_backend(harness: TestHarness, client: SyncStratoClient) -> None:
    with pytest.raises(BackendNotConfigured, match=r"STRATOFLOW_BACKEND=aws"):
        client.read_deployments()
    with pytest.raises(BackendNotConfigured):
        client.create_flow_run_from_deployment("nightly")
