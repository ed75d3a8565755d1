"""Schedulers ticking concurrently for the same minute, repeatedly: each in a process of
its own, released together by a barrier for every round (one minute later each round,
so every round sees new slots and the slots of the rounds before). Each slot becomes
exactly one run, created by exactly one tick, and every run is sent."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from stratoflow.deployments.deploy import deploy_flow, set_deployment_paused
from stratoflow.entrypoints import load_flow
from stratoflow.scheduler import CATCH_UP, LOOKAHEAD
from stratoflow.schedules import slots
from tests.chaos._chaos import SCALE, Stack, record_figures, scheduler_process

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240 if SCALE.name == "default" else 1200)]

SCHEDULES = [
    {"cron": "* * * * *", "slug": "minutely"},
    {"interval": 30, "anchor_date": "2026-01-01T00:00:15+00:00", "slug": "half-minute"},
]


def test_concurrent_schedulers_create_each_slot_exactly_once(stack: Stack) -> None:
    began = time.monotonic()
    platform = stack.platform
    deploy_flow(
        load_flow(f"{stack.project / 'flows.py'}:steady"),
        "ticks",
        project_dir=stack.project,
        work_pool="ticks",
        parameters={"ledger": str(stack.ledger), "seconds": 0},
        schedules=SCHEDULES,
    )
    deployment = platform.deployments.get("ticks")
    base = platform.services.clock.now().replace(second=0, microsecond=0)
    moments = [base + timedelta(minutes=r) for r in range(SCALE.scheduler_rounds)]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(SCALE.schedulers)
    results: Any = context.Queue()
    processes = [
        context.Process(
            target=scheduler_process, args=([m.isoformat() for m in moments], barrier, results)
        )
        for _ in range(SCALE.schedulers)
    ]
    try:
        for process in processes:
            process.start()
        reports = [results.get(timeout=180) for _ in range(len(moments) * len(processes))]
        for process in processes:
            process.join(timeout=60)
            assert process.exitcode == 0
        runs = stack.runs_of("ticks")

        expected = {
            f"{schedule.key}|{slot.isoformat()}"
            for moment in moments
            for schedule in deployment.schedules
            for slot in slots(schedule.schedule, moment - CATCH_UP, moment + LOOKAHEAD)
        }
        per_key = Counter(run.idempotency_key for run in runs)
        assert set(per_key) == expected
        assert max(per_key.values()) == 1, per_key.most_common(3)
        assert [errors for *_, errors in reports if errors] == []
        created = sum(r[2] for r in reports)
        assert created == len(runs)  # each slot created by exactly one tick
        per_moment = Counter(moment for _, moment, *_ in reports)
        assert set(per_moment.values()) == {len(processes)}
        assert all(run.enqueued_at is not None for run in runs)
        visible, in_flight, delayed = stack.queue_depth("ticks")
        messages = visible + in_flight + delayed
        assert messages >= len(runs)  # every run sent (a concurrent orphan sweep may resend)
        record_figures(
            "concurrent schedulers",
            schedulers=len(processes),
            rounds=len(moments),
            ticks=len(reports),
            slots=len(expected),
            runs=len(runs),
            created=created,
            found_existing=sum(r[3] for r in reports),
            messages=messages,
            seconds=round(time.monotonic() - began, 1),
        )
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
        # Nothing of this test may linger for the others: no schedule, no run, no message.
        set_deployment_paused("ticks", True)
        for run in stack.runs_of("ticks"):
            platform.backend.delete_flow_run(run.id)
        platform.queues.client.purge_queue(QueueUrl=platform.queues.url("ticks", "default"))
