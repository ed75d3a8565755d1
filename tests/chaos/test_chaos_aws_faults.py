"""Injected throttling and 5xx errors on every DynamoDB, SQS and S3 call of this process
(botocore `before-send` hooks, a seeded random fraction of attempts) while runs are
created, executed in-process by the Lambda worker handler (through the local runtime's
SQS event source), retried through their queue, swept by the scheduler tick and read
back. botocore's retry mode absorbs the faults: every run ends Completed with its
result, nothing is lost, no attempt runs twice."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.retries.standard import ExponentialBackoff

from stratoflow import runs as run_api
from stratoflow.deployments.runs import run_deployment
from stratoflow.dev.event_sources import LambdaWorkerSource
from stratoflow.dev.lambda_runtime import invoke
from stratoflow.models import FlowRun
from tests.chaos._chaos import (
    SCALE,
    FaultInjector,
    Stack,
    Ticker,
    audit,
    record_figures,
    settle,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240 if SCALE.name == "default" else 1200)]

RESULT_SIZE = 6000  # the flaky flow's result pad: over the 4 KB inline limit, so in S3


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """botocore decides whether and how often to retry, as always; its backoff delays
    are a hundredth of their usual length."""
    original = ExponentialBackoff.delay_amount
    monkeypatch.setattr(
        ExponentialBackoff, "delay_amount", lambda self, context: original(self, context) / 100
    )
    yield


@pytest.mark.usefixtures("fast_backoff")
def test_runs_under_throttling_and_5xx_end_completed_with_their_results(stack: Stack) -> None:
    began = time.monotonic()
    platform = stack.platform
    injector = FaultInjector(SCALE.seed, SCALE.fault_rate)
    failures: list[Any] = []

    def deliver(name: str, event: dict[str, Any]) -> Any:
        response = invoke(name, event)
        failures.extend(response["batchItemFailures"])
        return response

    source = LambdaWorkerSource(platform, deliver)
    names = ("fault-steady", "fault-flaky")
    injector.install(platform.backend.clients)
    try:
        with Ticker(platform) as ticker:  # the sweeps run under the same faults
            created = [run_deployment(names[i % 2], timeout=0) for i in range(SCALE.fault_runs)]
            ids = {run.id for run in created}

            def poll() -> list[FlowRun]:
                source.poll()
                return [r for name in names for r in stack.runs_of(name) if r.id in ids]

            limit = 150 if SCALE.name == "default" else 900
            runs = settle(poll, expected=len(created), timeout=limit)
            results = {run.id: run_api.read_result(run) for run in runs}
    finally:
        injector.uninstall()

    report = audit(stack, runs)
    assert report.states == Counter({"Completed": len(created)}), report.states
    for run in runs:
        attempts = [attempt for attempt, _ in stack.executions(run.id)]
        if run.deployment_name == "fault-flaky":
            assert (run.run_count, attempts) == (2, [1, 2]), run.id
            assert results[run.id] == f"{run.id}:25:" + "r" * RESULT_SIZE
        else:
            assert (run.run_count, attempts) == (1, [1]), run.id
            assert results[run.id] == f"{run.id}:49"
    for service in ("dynamodb", "sqs", "s3"):
        assert any(s == service for s, _ in injector.injected), f"no fault injected on {service}"
    assert ticker.errors == []
    record_figures(
        "AWS faults",
        runs=len(runs),
        fault_rate=SCALE.fault_rate,
        attempts=dict(injector.attempts),
        injected=injector.total_injected,
        injected_by_service=dict(Counter(s for s, _ in injector.injected.elements())),
        injected_by_code={f"{s}:{c}": n for (s, c), n in sorted(injector.injected.items())},
        batch_item_failures=len(failures),
        ticks=ticker.ticks,
        seconds=round(time.monotonic() - began, 1),
    )
