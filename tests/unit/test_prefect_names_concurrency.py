"""Prefect 3's `prefect.concurrency.asyncio` (and `.sync`) paths: `concurrency` as an
async context manager and `rate_limit` as a coroutine."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from stratoflow import flow
from stratoflow.clock import SystemClock
from stratoflow.concurrency import (
    AcquireConcurrencySlotTimeout,
    ConcurrencyLimitNotFound,
    api,
    create_concurrency_limit,
    read_concurrency_limit,
)
from stratoflow.concurrency import sync as prefect_sync
from stratoflow.concurrency.asyncio import concurrency, rate_limit
from stratoflow.testing import TestHarness, stratoflow_test_harness


def held(name: str) -> int:
    return read_concurrency_limit(name).leased_slots(datetime.now(UTC))


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness(clock=SystemClock()) as h:
        yield h


def test_sync_path() -> None:
    assert prefect_sync.concurrency is api.concurrency
    assert prefect_sync.rate_limit is api.rate_limit


def test_slots_are_held_inside_the_block_and_given_back(harness: TestHarness) -> None:
    create_concurrency_limit("db", limit=2)

    async def use() -> list[int]:
        inside = []
        async with concurrency("db", occupy=2):
            inside.append(held("db"))
        inside.append(held("db"))
        return inside

    assert asyncio.run(use()) == [2, 0]


def test_slots_come_back_when_the_block_raises(harness: TestHarness) -> None:
    create_concurrency_limit("db", limit=1)

    async def fail() -> None:
        async with concurrency("db"):
            raise KeyError("boom")

    with pytest.raises(KeyError):
        asyncio.run(fail())
    assert held("db") == 0


def test_the_event_loop_keeps_running_while_waiting(harness: TestHarness) -> None:
    create_concurrency_limit("one", limit=1)
    order: list[str] = []

    async def holder() -> None:
        async with concurrency("one"):
            order.append("held")
            await asyncio.sleep(0.2)
            order.append("released")

    async def waiter() -> None:
        await asyncio.sleep(0.02)
        async with concurrency("one", timeout_seconds=5):
            order.append("waiter in")

    async def ticker() -> None:
        await asyncio.sleep(0.05)
        order.append("tick")  # runs while the waiter waits for the slot

    async def main() -> None:
        await asyncio.gather(holder(), waiter(), ticker())

    asyncio.run(main())
    assert order == ["held", "tick", "released", "waiter in"]


def test_timeout_and_strict(harness: TestHarness) -> None:
    create_concurrency_limit("busy", limit=1)

    async def both() -> None:
        async with concurrency("busy"), concurrency("busy", timeout_seconds=0.1):
            pass

    with pytest.raises(AcquireConcurrencySlotTimeout):
        asyncio.run(both())

    async def missing() -> None:
        async with concurrency("nope", strict=True):
            pass

    with pytest.raises(ConcurrencyLimitNotFound):
        asyncio.run(missing())


def test_prefect_keywords_are_accepted(harness: TestHarness) -> None:
    create_concurrency_limit("db", limit=1)

    async def use() -> None:
        async with concurrency("db", occupy=1, max_retries=3, lease_duration=60):
            pass

    asyncio.run(use())


def test_rate_limit_takes_slots_that_decay(harness: TestHarness) -> None:
    create_concurrency_limit("api", limit=2, slot_decay_per_second=10.0)

    async def calls() -> None:
        await rate_limit("api")
        await rate_limit("api")
        await rate_limit("api", timeout_seconds=5)  # waits for a slot to decay

    asyncio.run(calls())


def test_in_an_async_flow(harness: TestHarness) -> None:
    create_concurrency_limit("db", limit=1)

    @flow
    async def writer() -> int:
        async with concurrency("db"):
            return held("db")

    assert asyncio.run(writer()) == 1
    assert held("db") == 0
