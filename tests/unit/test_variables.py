"""`stratoflow.variables.Variable` on the memory backend: Prefect 3's API and checks.
No I/O: the test harness's memory backend and fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from stratoflow import flow, task
from stratoflow.clock import FakeClock
from stratoflow.records import (
    VARIABLE_VALUE_MAX_LENGTH,
    InvalidVariableError,
    VariableAlreadyExists,
)
from stratoflow.testing import TestHarness, stratoflow_test_harness
from stratoflow.variables import Variable, list_variables, read_variable


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


@pytest.mark.parametrize(
    "value",
    ["text", 42, 1.5, True, None, [1, "a", None], {"nested": {"list": [1, 2]}}],
)
def test_json_values_round_trip(harness: TestHarness, value: object) -> None:
    stored = Variable.set("my_var", value)
    assert stored == Variable(name="my_var", value=value, tags=[])
    assert Variable.get("my_var") == value


def test_get_returns_the_default_for_a_missing_variable(harness: TestHarness) -> None:
    assert Variable.get("missing") is None
    assert Variable.get("missing", default={"rows": 10}) == {"rows": 10}
    # No variable can have a name Prefect would refuse: the default, as Prefect's 404.
    assert Variable.get("Not A Name", default=3) == 3


def test_set_refuses_an_existing_name_without_overwrite(harness: TestHarness) -> None:
    Variable.set("threshold", 1)
    with pytest.raises(ValueError, match=r"already exists. Use `overwrite=True`") as caught:
        Variable.set("threshold", 2)
    assert isinstance(caught.value, VariableAlreadyExists)
    assert Variable.get("threshold") == 1
    stored = Variable.set("threshold", 2, tags=["ops"], overwrite=True)
    assert (stored.value, stored.tags) == (2, ["ops"])
    assert Variable.get("threshold") == 2


def test_overwrite_keeps_the_creation_time(harness: TestHarness) -> None:
    clock = harness.clock
    assert isinstance(clock, FakeClock)
    Variable.set("x", 1)
    created = clock.now()
    clock.advance(60)
    Variable.set("x", 2, overwrite=True)
    record = read_variable("x")
    assert record is not None
    assert record.created == created
    assert record.updated == clock.now()


def test_unset_says_whether_it_deleted(harness: TestHarness) -> None:
    Variable.set("gone", "soon")
    assert Variable.unset("gone") is True
    assert Variable.unset("gone") is False
    assert Variable.unset("Not A Name") is False
    assert Variable.get("gone", default="d") == "d"


@pytest.mark.parametrize("name", ["", "UPPER", "with space", "dot.ted", "slash/ed", "x" * 256])
def test_names_are_checked_as_prefect_checks_them(harness: TestHarness, name: str) -> None:
    with pytest.raises(ValueError) as caught:
        Variable.set(name, 1)
    assert isinstance(caught.value, InvalidVariableError)
    assert "variable name" in str(caught.value).lower()


@pytest.mark.parametrize("name", ["a", "snake_case", "kebab-case", "v2", "x" * 255])
def test_valid_names(harness: TestHarness, name: str) -> None:
    Variable.set(name, 1)
    assert Variable.get(name) == 1


@pytest.mark.parametrize(
    "value", [object(), {1: "int key"}, float("nan"), {"set": {1, 2}}, b"bytes"]
)
def test_values_must_be_json(harness: TestHarness, value: object) -> None:
    with pytest.raises(InvalidVariableError, match="must be JSON"):
        Variable.set("bad", value)
    assert Variable.get("bad") is None


def test_values_are_at_most_5000_characters_of_json(harness: TestHarness) -> None:
    fits = "x" * (VARIABLE_VALUE_MAX_LENGTH - 2)  # the quotes make 5000
    Variable.set("fits", fits)
    with pytest.raises(InvalidVariableError, match="the limit is 5000"):
        Variable.set("too_big", fits + "x")


def test_changing_a_value_set_or_got_does_not_change_the_variable(
    harness: TestHarness,
) -> None:
    value = {"items": [1]}
    Variable.set("shared", value)
    value["items"].append(2)
    got = Variable.get("shared")
    got["items"].append(3)
    assert Variable.get("shared") == {"items": [1]}


def test_tuples_are_stored_as_lists(harness: TestHarness) -> None:
    Variable.set("pair", (1, 2))
    assert Variable.get("pair") == [1, 2]


def test_list_is_by_name(harness: TestHarness) -> None:
    for name in ("b", "c", "a"):
        Variable.set(name, name)
    assert [r.name for r in list_variables()] == ["a", "b", "c"]
    assert [r.name for r in list_variables(limit=2)] == ["a", "b"]


def test_flows_and_tasks_read_and_write_variables(harness: TestHarness) -> None:
    @task
    def bump() -> int:
        value = Variable.get("counter", default=0) + 1
        Variable.set("counter", value, overwrite=True)
        return int(value)

    @flow
    def counting() -> list[int]:
        return [bump(), bump()]

    assert counting() == [1, 2]
    assert Variable.get("counter") == 2


def test_async_forms_are_coroutines(harness: TestHarness) -> None:
    async def main() -> tuple[object, object, bool]:
        await Variable.aset("async_var", {"a": 1})
        value = await Variable.aget("async_var")
        # With an event loop running outside a run, the sync names dispatch to the
        # async forms, as Prefect's do; `_sync=True` forces the sync call.
        dispatched = await Variable.get("async_var")
        assert Variable.get("async_var", _sync=True) == {"a": 1}
        return value, dispatched, await Variable.aunset("async_var")

    assert asyncio.run(main()) == ({"a": 1}, {"a": 1}, True)


def test_generic_subscription_works_as_in_prefect(harness: TestHarness) -> None:
    Variable.set("typed", "text")
    assert Variable[str].get("typed") == "text"
