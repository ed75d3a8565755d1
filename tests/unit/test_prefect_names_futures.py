"""Prefect 3's names in `prefect.futures`: PrefectFuture, PrefectConcurrentFuture,
PrefectFutureList, wait, as_completed, resolve_futures_to_states and
resolve_futures_to_results (Prefect's documented behaviour)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stratoflow import flow, futures, task
from stratoflow.annotations import quote
from stratoflow.states import State
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


@task
def double(n: int) -> int:
    return n * 2


@task
def broken() -> int:
    raise ValueError("broken")


def test_wait_and_as_completed_are_there() -> None:
    assert callable(futures.wait) and callable(futures.as_completed)


def test_the_future_classes_under_prefects_names(harness: TestHarness) -> None:
    @flow
    def run() -> list[bool]:
        single, mapped = double.submit(1), double.map([1, 2])
        mapped.wait()
        return [
            isinstance(single, futures.PrefectFuture),
            isinstance(single, futures.PrefectConcurrentFuture),
            isinstance(mapped, futures.PrefectFutureList),
        ]

    assert run() == [True, True, True]


def test_resolve_futures_to_states_keeps_the_structure(harness: TestHarness) -> None:
    @flow
    def run() -> Any:
        submitted = {"a": double.submit(1), "b": [double.submit(2), 7], "q": quote(9)}
        return futures.resolve_futures_to_states(submitted)

    resolved = run()
    assert isinstance(resolved["a"], State) and resolved["a"].result() == 2
    assert isinstance(resolved["b"][0], State) and resolved["b"][1] == 7
    assert resolved["q"] == quote(9)


def test_resolve_futures_to_results(harness: TestHarness) -> None:
    @flow
    def run() -> Any:
        return futures.resolve_futures_to_results((double.submit(1), double.map([2, 3])))

    assert run() == (2, [4, 6])


def test_resolve_futures_to_results_raises_when_one_did_not_complete(
    harness: TestHarness,
) -> None:
    @flow
    def run() -> Any:
        future = broken.submit()
        try:
            futures.resolve_futures_to_results([future])
        except Exception as exc:  # Prefect raises a plain Exception
            return str(exc)
        return "no error"

    assert "did not complete" in run()
