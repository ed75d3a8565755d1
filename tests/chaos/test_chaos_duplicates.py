"""Duplicate SQS deliveries: every work message is sent more than once (and once more,
late, after its run has probably ended). Pollers racing for the copies, or the Lambda
worker getting them in one batch, run each run exactly once."""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import pytest

from stratoflow.deployments.runs import run_deployment
from stratoflow.dev.event_sources import LambdaWorkerSource
from stratoflow.dev.lambda_runtime import invoke
from stratoflow.models import FlowRun
from stratoflow.workers.messages import FlowRunMessage
from stratoflow.workers.queues import PREFETCH_LEAD_SECONDS, WorkQueues
from tests.chaos._chaos import SCALE, Pollers, Stack, audit, record_figures, settle

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240 if SCALE.name == "default" else 1200)]

LATE_COPY_SECONDS = 4


class Copies:
    """Wraps WorkQueues.send: each message is sent `copies` times at once, plus one copy
    delayed by LATE_COPY_SECONDS (a redelivery after the run has likely ended)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, copies: int) -> None:
        self.copies = copies
        self.sent: Counter[str] = Counter()
        original = WorkQueues.send

        def send(
            queues: WorkQueues,
            pool: str,
            queue: str,
            message: FlowRunMessage,
            *,
            delay_seconds: float = 0,
        ) -> str:
            ids = [
                original(queues, pool, queue, message, delay_seconds=delay_seconds)
                for _ in range(copies)
            ]
            late = delay_seconds + LATE_COPY_SECONDS + PREFETCH_LEAD_SECONDS
            original(queues, pool, queue, message, delay_seconds=late)
            self.sent[message.flow_run_id] += copies + 1
            return ids[0]

        monkeypatch.setattr(WorkQueues, "send", send)


def drained(stack: Stack, pool: str, *, timeout: float) -> None:
    """Every copy was received and deleted: nothing visible, in flight or delayed."""
    deadline = time.monotonic() + timeout
    while (depth := stack.queue_depth(pool)) != (0, 0, 0):
        assert time.monotonic() < deadline, f"work queue {pool} still holds {depth}"
        time.sleep(0.5)


def check_once(stack: Stack, runs: list[FlowRun]) -> None:
    report = audit(stack, runs)
    assert report.states == Counter({"Completed": len(runs)}), report.states
    for run in runs:
        assert run.run_count == 1
        assert [attempt for attempt, _ in stack.executions(run.id)] == [1], run.id


def test_pollers_racing_for_duplicate_messages_run_each_run_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    began = time.monotonic()
    copies = Copies(monkeypatch, SCALE.copies)
    created = [run_deployment("dup-steady", timeout=0) for _ in range(SCALE.duplicate_runs)]
    pollers = Pollers(stack, "dups")
    try:
        for _ in range(SCALE.pollers):
            pollers.start()  # after the messages: they race for the copies
        runs = settle(
            lambda: stack.runs_of("dup-steady"),
            expected=SCALE.duplicate_runs,
            timeout=120 if SCALE.name == "default" else 900,
        )
        drained(stack, "dups", timeout=60)
        pollers.check_alive()
        pollers.stop()
    except BaseException:
        print(pollers.logs())
        raise
    finally:
        pollers.close()

    assert {r.id for r in runs} == {r.id for r in created}
    check_once(stack, runs)
    assert stack.dead_letters("dups") == []
    logs = pollers.logs()
    record_figures(
        "duplicate deliveries (pollers)",
        runs=len(runs),
        pollers=SCALE.pollers,
        messages_sent=sum(copies.sent.values()),
        duplicates=sum(copies.sent.values()) - len(runs),
        dropped_by_triage=len(re.findall(r"Dropping the message of flow run .*: flow run", logs)),
        lost_claim_races=len(re.findall(r"another worker claimed it", logs)),
        executions=sum(len(stack.executions(r.id)) for r in runs),
        seconds=round(time.monotonic() - began, 1),
    )


def test_the_lambda_worker_runs_each_run_once_from_duplicate_records(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    began = time.monotonic()
    copies = Copies(monkeypatch, SCALE.copies)
    count = max(4, SCALE.duplicate_runs // 2)
    created = [run_deployment("fault-steady", timeout=0) for _ in range(count)]
    batches: list[int] = []

    def deliver(name: str, event: dict[str, Any]) -> Any:
        batches.append(len(event["Records"]))
        response = invoke(name, event)
        assert response == {"batchItemFailures": []}
        return response

    source = LambdaWorkerSource(stack.platform, deliver)

    def poll() -> list[FlowRun]:
        source.poll()
        return [r for r in stack.runs_of("fault-steady") if r.id in {c.id for c in created}]

    runs = settle(poll, expected=count, timeout=120 if SCALE.name == "default" else 900)
    deadline = time.monotonic() + 30
    while stack.queue_depth("faults") != (0, 0, 0):  # the late copies, dropped as stale
        assert time.monotonic() < deadline, stack.queue_depth("faults")
        source.poll()
        time.sleep(0.5)

    check_once(stack, runs)
    record_figures(
        "duplicate deliveries (Lambda worker)",
        runs=count,
        messages_sent=sum(copies.sent.values()),
        duplicates=sum(copies.sent.values()) - count,
        batches=len(batches),
        records=sum(batches),
        executions=sum(len(stack.executions(r.id)) for r in runs),
        seconds=round(time.monotonic() - began, 1),
    )
