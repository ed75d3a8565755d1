"""Futures and states inside task arguments are resolved wherever Prefect's
`visit_collection` finds them (lists, tuples, named tuples, sets, dicts, dataclasses,
pydantic models), and the containers are rebuilt with the results."""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest
from pydantic import BaseModel, ConfigDict

from stratoflow import flow, task
from stratoflow.annotations import allow_failure
from stratoflow.states import Completed
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


@task
def number(x: int) -> int:
    return x


@task
def explode() -> int:
    raise ValueError("upstream failed")


@task
def echo(value: Any) -> Any:
    return value


@dataclass
class Pair:
    left: Any
    right: Any
    note: str = "n"


@dataclass(frozen=True)
class FrozenBox:
    content: Any
    computed: int = field(init=False, default=0)


class Point(NamedTuple):
    x: Any
    y: Any


class Model(BaseModel):
    a: Any
    b: list[Any]


class FrozenModel(BaseModel):
    model_config = ConfigDict(frozen=True)
    value: Any


def test_a_future_inside_a_dataclass_is_resolved(harness: TestHarness) -> None:
    @flow
    def pipeline() -> Pair:
        return echo(Pair(number.submit(1), [number.submit(2)]))

    assert pipeline() == Pair(1, [2])


def test_a_frozen_dataclass_is_rebuilt(harness: TestHarness) -> None:
    @flow
    def pipeline() -> FrozenBox:
        return echo(FrozenBox(number.submit(3)))

    assert pipeline().content == 3


def test_a_named_tuple_keeps_its_type(harness: TestHarness) -> None:
    @flow
    def pipeline() -> Point:
        return echo(Point(number.submit(1), number.submit(2)))

    result = pipeline()
    assert isinstance(result, Point)
    assert result == Point(1, 2)


def test_a_pydantic_model_is_rebuilt(harness: TestHarness) -> None:
    @flow
    def pipeline() -> tuple[Model, FrozenModel]:
        return echo(
            (Model(a=number.submit(1), b=[number.submit(2)]), FrozenModel(value=number.submit(3)))
        )

    model, frozen = pipeline()
    assert isinstance(model, Model) and model.a == 1 and model.b == [2]
    assert isinstance(frozen, FrozenModel) and frozen.value == 3


def test_dict_keys_and_values_and_dict_types(harness: TestHarness) -> None:
    @flow
    def pipeline() -> tuple[Any, ...]:
        ordered = OrderedDict(a=number.submit(1))
        counts: defaultdict[str, Any] = defaultdict(int, b=number.submit(2))
        return echo((ordered, counts, {number.submit(3)}))

    ordered, counts, as_set = pipeline()
    assert isinstance(ordered, OrderedDict) and ordered == {"a": 1}
    assert isinstance(counts, defaultdict) and counts["b"] == 2 and counts["missing"] == 0
    assert as_set == {3}


def test_states_inside_containers_are_resolved(harness: TestHarness) -> None:
    @flow
    def pipeline() -> Pair:
        return echo(Pair(Completed(data=5), {"k": Completed(data=6)}))

    assert pipeline() == Pair(5, {"k": 6})


def test_an_argument_without_futures_is_passed_as_the_same_object(harness: TestHarness) -> None:
    original = Pair([1], {"a": 2})

    @flow
    def pipeline() -> bool:
        return echo(original) is original

    assert pipeline() is True


def test_upstream_runs_inside_a_dataclass_are_recorded(harness: TestHarness) -> None:
    @flow
    def pipeline() -> None:
        echo(Pair(number.submit(1), None))

    pipeline()
    runs = {run.task_name: run for run in harness.task_runs()}
    assert runs["echo"].task_inputs["value"] == [runs["number"].id]


def test_a_failed_upstream_inside_a_dataclass_stops_the_downstream(harness: TestHarness) -> None:
    names: list[str] = []

    @flow
    def pipeline() -> None:
        names.append(echo(Pair(explode.submit(), 1), return_state=True).name)

    pipeline()
    assert names == ["NotReady"]


def test_allow_failure_inside_a_dataclass(harness: TestHarness) -> None:
    @flow
    def pipeline() -> Any:
        return echo(Pair(allow_failure(explode.submit()), 1))

    result = pipeline()
    assert isinstance(result.left, ValueError)


def test_a_generator_argument_is_not_consumed(harness: TestHarness) -> None:
    @task
    def consume(values: Any) -> list[int]:
        return list(values)

    @flow
    def pipeline() -> list[int]:
        return consume(i for i in range(3))

    assert pipeline() == [0, 1, 2]


def test_a_container_holding_itself_does_not_loop(harness: TestHarness) -> None:
    looped: list[Any] = [1]
    looped.append(looped)

    @flow
    def pipeline() -> Any:
        return echo(looped)

    assert pipeline()[0] == 1
