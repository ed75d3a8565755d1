"""Prefect 3's argument annotations (`prefect.utilities.annotations`): `quote` and
`opaque` beside `unmapped` and `allow_failure`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import stratoflow
from stratoflow import flow, task
from stratoflow.annotations import allow_failure, opaque, quote, unmapped, unwrap
from stratoflow.testing import TestHarness, stratoflow_test_harness
from stratoflow.utilities import annotations as prefect_path


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


def test_prefect_import_path() -> None:
    assert prefect_path.quote is quote
    assert prefect_path.opaque is opaque
    assert prefect_path.unmapped is unmapped is stratoflow.unmapped
    assert prefect_path.allow_failure is allow_failure is stratoflow.allow_failure


@pytest.mark.parametrize("wrapper", [unmapped, allow_failure, quote, opaque])
def test_every_wrapper_unwraps_and_rewraps(wrapper: type) -> None:
    wrapped = wrapper([1, 2])
    assert wrapped.value == [1, 2]
    assert wrapped.unwrap() == [1, 2]
    assert wrapped.rewrap(3) == wrapper(3)
    assert type(wrapped.rewrap(3)) is wrapper
    assert wrapped != wrapper([1, 3])


def test_quote_unquotes() -> None:
    assert quote({"a": 1}).unquote() == {"a": 1}


def test_unwrap_removes_every_layer() -> None:
    assert unwrap(unmapped(quote(opaque(allow_failure(5))))) == 5


def test_wrappers_are_distinct_types() -> None:
    assert quote(1) != opaque(1)
    assert not isinstance(quote(1), unmapped | allow_failure)


# What the engine does with them (Prefect: a quoted argument is passed as is, unresolved;
# an opaque future is resolved without walking into its result).


def test_a_quoted_argument_reaches_the_task_unwrapped(harness: TestHarness) -> None:
    @task
    def size(rows: dict[str, int]) -> int:
        return len(rows)

    @flow
    def run() -> int:
        return size(quote({"a": 1, "b": 2}))

    assert run() == 2


def test_quote_leaves_futures_inside_unresolved(harness: TestHarness) -> None:
    @task
    def one() -> int:
        return 1

    @task
    def kind(items: list[object]) -> str:
        return type(items[0]).__name__

    @flow
    def run() -> str:
        return kind(quote([one.submit()]))

    assert run() == "StratoFuture"


def test_an_opaque_future_is_resolved(harness: TestHarness) -> None:
    @task
    def load() -> dict[str, int]:
        return {"a": 1}

    @task
    def count(data: dict[str, int]) -> int:
        return len(data)

    @flow
    def run() -> int:
        return count(opaque(load.submit()))

    assert run() == 1


def test_map_goes_over_a_quoted_iterable(harness: TestHarness) -> None:
    @task
    def double(n: int) -> int:
        return n * 2

    @flow
    def run() -> list[int]:
        return double.map(quote([1, 2, 3])).result()

    assert run() == [2, 4, 6]
