"""`stratoflow.client.schemas`: Prefect's filter and sort names, tested on stratoflow's
records in memory (no backend)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from pydantic import ValidationError

from stratoflow.client.schemas import sorting
from stratoflow.client.schemas.filters import (
    ArtifactFilter,
    DeploymentFilter,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateName,
    FlowRunFilterStateType,
    FlowRunFilterTags,
    LogFilter,
    UnsupportedFilter,
    WorkQueueFilter,
)
from stratoflow.client.schemas.sorting import FlowRunSort, LogSort
from stratoflow.models import FlowRun, LogEntry
from stratoflow.states import Completed, Failed, Late, Running, Scheduled, StateType
from tests._time import anchor

START = anchor()


def run(name: str, **fields: object) -> FlowRun:
    return FlowRun(id=str(uuid.uuid4()), name=name, flow_name="etl", **fields)  # type: ignore[arg-type]


def test_state_filters_match_by_type_and_by_name_as_models_or_dicts() -> None:
    completed, failed, late = run("a", state=Completed()), run("b", state=Failed()), run("c")
    late.state = Late()
    by_type = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))
    )
    assert [by_type.matches(r) for r in (completed, failed, late)] == [True, False, False]
    by_name = FlowRunFilter(state={"name": {"any_": ["Late"]}})
    assert [by_name.matches(r) for r in (completed, failed, late)] == [False, False, True]
    as_text = FlowRunFilter(state={"type": {"any_": ["FAILED"], "not_any_": ["COMPLETED"]}})
    assert [as_text.matches(r) for r in (completed, failed, late)] == [False, True, False]
    # A run without a state matches no state criterion.
    assert not by_type.matches(run("new"))
    assert FlowRunFilter(
        state=FlowRunFilterState(name=FlowRunFilterStateName(not_any_=["Late"]))
    ).matches(completed)


def test_names_ids_tags_and_the_or_operator() -> None:
    target = run("nightly-Load", tags=("etl", "prod"), deployment_name="nightly")
    assert FlowRunFilter(name={"like_": "load"}).matches(target)  # case-insensitive part
    assert FlowRunFilter(id={"any_": [uuid.UUID(target.id)]}).matches(target)  # a UUID too
    assert FlowRunFilter(deployment_id={"any_": ["nightly"]}).matches(target)
    assert not FlowRunFilter(deployment_id={"is_null_": True}).matches(target)
    assert FlowRunFilter(tags=FlowRunFilterTags(all_=["etl", "prod"])).matches(target)
    assert not FlowRunFilter(tags={"all_": ["etl", "dev"]}).matches(target)
    assert FlowRunFilter(tags={"any_": ["dev", "prod"]}).matches(target)
    assert FlowRunFilter(tags={"is_null_": True}).matches(run("untagged"))
    neither = {"name": {"any_": ["other"]}, "tags": {"any_": ["dev"]}}
    assert not FlowRunFilter(**neither).matches(target)
    assert not FlowRunFilter(**neither, operator="or_").matches(target)
    either = {"name": {"any_": ["other"]}, "tags": {"any_": ["etl"]}}
    assert FlowRunFilter(**either, operator="or_").matches(target)
    assert FlowFilter(name=FlowFilterName(any_=["etl"])).matches(target)


def test_time_filters_are_inclusive_and_take_naive_times_as_utc() -> None:
    started = run("s", start_time=START)
    assert FlowRunFilter(start_time={"before_": START, "after_": START}).matches(started)
    assert not FlowRunFilter(start_time={"after_": START + timedelta(seconds=1)}).matches(started)
    assert FlowRunFilter(start_time={"before_": START.replace(tzinfo=None)}).matches(started)
    not_started = run("n")
    assert not FlowRunFilter(start_time={"before_": START}).matches(not_started)
    assert FlowRunFilter(start_time={"is_null_": True}).matches(not_started)
    assert FlowRunFilter(expected_start_time={"before_": START}).matches(
        run("x", expected_start_time=START - timedelta(hours=1))
    )


def test_a_field_stratoflow_cannot_filter_on_is_refused_with_the_fields_it_can() -> None:
    with pytest.raises(ValidationError, match=r"FlowRunFilter has no created_by; it filters"):
        FlowRunFilter(created_by={"id_": []})  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match=r"FlowFilter has no id; it filters on .*name"):
        FlowFilter(id={"any_": [str(uuid.uuid4())]})  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match=r"has no text"):
        LogFilter(text={"query": "error"})  # type: ignore[call-arg]


def test_a_criterion_that_cannot_be_applied_to_the_values_given_is_refused() -> None:
    queues = WorkQueueFilter(name={"startswith_": ["high"]})
    assert queues.matches_values({"name": "high-priority"})
    assert not queues.matches_values({"name": "default"})
    with pytest.raises(UnsupportedFilter, match=r"WorkQueueFilter.name cannot be applied"):
        queues.matches_values({})


def test_deployment_log_and_artifact_filters() -> None:
    from stratoflow.client.schemas.objects import Deployment  # the stored model

    assert DeploymentFilter.ATTRIBUTES["id"] == "name"  # a deployment's id is its name
    assert Deployment.model_fields["name"]
    entry = LogEntry(START, 40, "ERROR", "flow", "boom", flow_run_id="r1", task_run_id=None)
    assert LogFilter(level={"ge_": 30}, flow_run_id={"any_": ["r1"]}).matches(entry)
    assert not LogFilter(level={"le_": 20}).matches(entry)
    assert LogFilter(task_run_id={"is_null_": True}).matches(entry)
    assert ArtifactFilter(key={"exists_": False}).matches_values(
        {"id": None, "key": None, "flow_run_id": None, "task_run_id": None, "type": None}
    )


def test_flow_runs_sort_as_prefect_with_missing_values_last() -> None:
    early = run("b", start_time=START, end_time=START + timedelta(minutes=1))
    late = run("a", start_time=START + timedelta(hours=1))
    waiting = run("c", expected_start_time=START + timedelta(minutes=30), state=Scheduled())
    found = [early, late, waiting]
    # START_TIME_*: the start time, else the expected start (as Prefect's server)
    assert sorting.sort(found, FlowRunSort.START_TIME_DESC, FlowRunSort) == [late, waiting, early]
    assert sorting.sort(found, "START_TIME_ASC", FlowRunSort) == [early, waiting, late]
    assert sorting.sort(found, FlowRunSort.END_TIME_DESC, FlowRunSort) == [early, late, waiting]
    assert sorting.sort(found, FlowRunSort.NAME_ASC, FlowRunSort) == [late, early, waiting]
    assert sorting.sort(found, FlowRunSort.NEXT_SCHEDULED_START_TIME_ASC, FlowRunSort)[0] is waiting
    running = run("r", state=Running())
    assert sorting.sort([running], FlowRunSort.ID_DESC, FlowRunSort) == [running]
    with pytest.raises(ValueError, match=r"'SIZE_DESC' is not a LogSort; use one of"):
        sorting.sort([], "SIZE_DESC", LogSort)
