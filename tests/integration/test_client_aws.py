"""`get_client()` against moto: the Prefect client's methods on deployed runs, with the
AWS backend, the deployment and work pool stores and SQS (docs/sdk.md, "Client")."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from _deploy_fixtures import (  # noqa: F401 - `installation` is a fixture
    EXAMPLES,
    START,
    Installation,
    installation,
    messages,
)

from stratoflow.client.orchestration import SyncStratoClient, get_client
from stratoflow.client.schemas.filters import (
    DeploymentFilter,
    FlowFilter,
    FlowRunFilter,
    LogFilter,
    TaskRunFilter,
    WorkQueueFilter,
)
from stratoflow.client.schemas.responses import SetStateStatus
from stratoflow.deployments.deploy import deploy_project
from stratoflow.exceptions import ObjectNotFound, ParameterValidationError
from stratoflow.states import Running, Scheduled, State, StateType
from stratoflow.workers.execute import NotRunnable, execute_flow_run


@pytest.fixture
def client(installation: Installation) -> SyncStratoClient:
    deploy_project(EXAMPLES)
    with get_client(sync_client=True) as found:
        return found


def test_reading_deployments_work_pools_and_queues(client: SyncStratoClient) -> None:
    assert client.read_deployment("nightly-etl").flow_name == "etl"
    assert client.read_deployment_by_name("etl/nightly-etl").name == "nightly-etl"
    assert client.read_deployment_by_name("nightly-etl").name == "nightly-etl"
    with pytest.raises(ObjectNotFound, match=r"runs flow 'etl', not 'other': ask for etl/"):
        client.read_deployment_by_name("other/nightly-etl")
    with pytest.raises(ObjectNotFound, match=r"Did you mean 'nightly-etl'"):
        client.read_deployment("nightly-et")
    names = [d.name for d in client.read_deployments()]
    assert names == ["fan-out", "nightly-etl", "nightly-report"]
    nightly = client.read_deployments(deployment_filter=DeploymentFilter(name={"like_": "NIGHTLY"}))
    assert [d.name for d in nightly] == ["nightly-etl", "nightly-report"]
    tagged = client.read_deployments(
        deployment_filter=DeploymentFilter(tags={"all_": ["etl"]}),
        flow_filter=FlowFilter(name={"any_": ["etl"]}),
    )
    assert [d.name for d in tagged] == ["nightly-etl"]
    assert [p.name for p in client.read_work_pools()] == ["default"]
    (queue,) = client.read_work_queues(
        work_pool_name="default", work_queue_filter=WorkQueueFilter(name={"any_": ["default"]})
    )
    assert (queue.name, queue.work_pool_name, queue.is_paused) == ("default", "default", False)
    assert client.read_work_queue_by_name("default").priority == 1
    with pytest.raises(ObjectNotFound, match=r"has no queue 'urgent'"):
        client.read_work_queue_by_name("urgent")


def test_creating_a_run_from_a_deployment_schedules_and_sends_it(
    installation: Installation, client: SyncStratoClient
) -> None:
    start = START + timedelta(minutes=5)
    run = client.create_flow_run_from_deployment(
        "nightly-etl",
        parameters={"rows": 2},
        state=Scheduled(scheduled_time=start),
        name="backfill-1",
        tags=["backfill"],
        idempotency_key="backfill-1",
    )
    assert run.state is not None and run.state.name == "Scheduled"
    assert (run.name, run.parameters, run.expected_start_time) == ("backfill-1", {"rows": 2}, start)
    assert {"etl", "backfill"} <= set(run.tags)
    again = client.create_flow_run_from_deployment("nightly-etl", idempotency_key="backfill-1")
    assert again.id == run.id  # the key made it already: no second run
    assert [m.flow_run_id for m in messages(installation.receive(after=400))] == [run.id]

    with pytest.raises(ParameterValidationError, match=r"unknown parameter\(s\) bogus"):
        client.create_flow_run_from_deployment("nightly-etl", parameters={"bogus": 1})
    with pytest.raises(TypeError, match=r"does not take job_variables"):
        client.create_flow_run_from_deployment("nightly-etl", job_variables={"memory": 1024})
    with pytest.raises(ValueError, match=r"starts Scheduled; got 'Running'"):
        client.create_flow_run_from_deployment("nightly-etl", state=Running())


def test_reading_a_deployed_run_its_task_runs_and_logs(
    installation: Installation, client: SyncStratoClient
) -> None:
    run = client.create_flow_run_from_deployment("nightly-etl", parameters={"rows": 3})
    other = client.create_flow_run_from_deployment("fan-out")
    assert execute_flow_run(run.id).is_completed()

    of_deployment = client.read_flow_runs(
        deployment_filter=DeploymentFilter(name={"any_": ["nightly-etl"]})
    )
    assert [r.id for r in of_deployment] == [run.id]
    completed = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id={"any_": ["nightly-etl", "fan-out"]},
            state={"type": {"any_": ["COMPLETED"]}},
        )
    )
    assert [r.id for r in completed] == [run.id]
    scheduled = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(state={"type": {"any_": ["SCHEDULED"]}})
    )
    assert [r.id for r in scheduled] == [other.id]

    task_runs = client.read_task_runs(task_run_filter=TaskRunFilter(flow_run_id={"any_": [run.id]}))
    assert [t.name for t in task_runs] == ["extract-0", "transform-0", "load-0"]
    loaded = client.read_task_run(task_runs[-1].id, flow_run_id=run.id)
    assert loaded.state is not None and loaded.state.is_completed()
    logs = client.read_logs(LogFilter(flow_run_id={"any_": [run.id]}, level={"ge_": 20}))
    assert any("Loaded 3 records" in entry.message for entry in logs)

    async def read_async() -> tuple[Any, Any]:
        async with get_client() as aclient:
            return await aclient.read_flow_run(run.id), await aclient.count_flow_runs()

    found, count = asyncio.run(read_async())
    assert (found.id, count) == (run.id, 2)


def test_setting_states_and_cancelling_deployed_runs(client: SyncStratoClient) -> None:
    run = client.create_flow_run_from_deployment("nightly-etl")
    cancelled = client.set_flow_run_state(
        run.id, State(type=StateType.CANCELLING, name="Cancelling")
    )
    assert cancelled.status is SetStateStatus.ACCEPT
    assert client.read_flow_run(run.id).state.is_cancelling()  # type: ignore[union-attr]
    with pytest.raises(NotRunnable, match=r"not waiting to run"):
        execute_flow_run(run.id)  # a worker receiving its message does not run it

    done = client.create_flow_run_from_deployment("fan-out", parameters={"items": 2})
    assert execute_flow_run(done.id).is_completed()
    refused = client.set_flow_run_state(done.id, Running())
    assert refused.status is SetStateStatus.REJECT
    assert refused.state is not None and refused.state.is_completed()
    forced = client.set_flow_run_state(
        done.id, State(type=StateType.CANCELLED, name="Cancelled"), force=True
    )
    assert forced.status is SetStateStatus.ACCEPT
    assert client.read_flow_run(done.id).state.name == "Cancelled"  # type: ignore[union-attr]


def test_pausing_and_resuming_a_deployment(
    installation: Installation, client: SyncStratoClient
) -> None:
    client.pause_deployment("nightly-etl")
    assert client.read_deployment("nightly-etl").paused
    client.resume_deployment("nightly-etl")
    assert not client.read_deployment("nightly-etl").paused
    client.set_deployment_paused_state("fan-out", True)
    assert [d.name for d in client.read_deployments() if d.paused] == ["fan-out"]
