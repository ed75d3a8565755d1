"""Prefect 3's `prefect.testing.utilities.prefect_test_harness`."""

from __future__ import annotations

from stratoflow import flow, task
from stratoflow.context import get_services
from stratoflow.testing import TestHarness, stratoflow_test_harness
from stratoflow.testing.utilities import prefect_test_harness


@task(retries=2, retry_delay_seconds=60)
def flaky(attempts: list[int]) -> str:
    attempts.append(1)
    if len(attempts) < 2:
        raise RuntimeError("first attempt fails")
    return "Done!"


@flow
def my_flow(attempts: list[int]) -> str:
    return flaky(attempts)


def test_prefect_test_harness_runs_flows_against_private_services() -> None:
    before = get_services()
    with prefect_test_harness() as harness:
        assert get_services() is not before
        assert my_flow([]) == "Done!"
        assert isinstance(harness, TestHarness)
        assert harness.last_flow_run().state.is_completed()  # type: ignore[union-attr]
        assert harness.clock.sleeps == [60]  # type: ignore[attr-defined]
    assert get_services() is before


def test_prefect_test_harness_takes_prefects_argument() -> None:
    with prefect_test_harness(server_startup_timeout=60):
        assert my_flow([]) == "Done!"


def test_both_spellings_are_importable_from_utilities() -> None:
    from stratoflow.testing import utilities

    assert utilities.stratoflow_test_harness is stratoflow_test_harness
