"""Scheduler: one tick over thousands of deployments against the emulator.

Creates N active deployments (default 2,000; env BENCH_DEPLOYMENTS), each with a schedule
that has exactly one slot in the tick's window, and runs one tick against moto's server on
loopback (real HTTP); with BENCH_SCHEDULER_STEADY=1, also a second tick over the same
window (the steady state: every slot exists already). Counts every AWS API call with
botocore's `provide-client-params` event. Prints a table and merges
the figures into bench/results.json under "scheduler".

The deployments are spread over 20 work queues: moto recounts all of a queue's messages
on every SendMessage (SQS does not), which would make one queue of thousands quadratic
and measure the emulator rather than the scheduler.

With BENCH_DUE_EVERY=k, only every k-th deployment has a slot in the window (the others
run at half past, outside it): the tick still pages through every deployment but creates
N/k runs, the shape of a real tick, where most deployments have nothing due. With
BENCH_SCHEDULER_BATCH_SETUP=1 the deployments are stored 25 at a time (BatchWriteItem,
the same items `DeploymentStore.put` writes), to keep the set-up of 10,000 short; the
tick itself is unchanged. BENCH_SCHEDULER_KEY names the results.json key (default
"scheduler").
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from stratoflow.emulator import emulator

N_DEPLOYMENTS = int(os.environ.get("BENCH_DEPLOYMENTS", "2000"))
STEADY = os.environ.get("BENCH_SCHEDULER_STEADY", "") not in ("", "0")
"""Also time a second tick over the same window (every slot exists already)."""
DUE_EVERY = int(os.environ.get("BENCH_DUE_EVERY", "1"))
BATCH_SETUP = os.environ.get("BENCH_SCHEDULER_BATCH_SETUP", "") not in ("", "0")
RESULTS_KEY = os.environ.get("BENCH_SCHEDULER_KEY", "scheduler")
QUEUES = 20
RESULTS = Path(__file__).with_name("results.json")
SLOT = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
NOW = SLOT - timedelta(minutes=10)
"""The tick's time: its window [09:48, 10:05) holds one slot of `0 * * * *`, at 10:00,
and none of `30 * * * *`."""


class _Collect:
    """Stands in for the DynamoDB client of a DeploymentStore: keeps the items it puts."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def put_item(self, *, Item: dict[str, Any], **_: Any) -> None:
        self.items.append(Item)


def _batch_write(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    for start in range(0, len(items), 25):
        requests: list[Any] = [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]
        while requests:
            response = client.batch_write_item(RequestItems={table: requests})
            requests = response.get("UnprocessedItems", {}).get(table, [])


def main() -> dict[str, Any]:
    os.environ.setdefault("STRATOFLOW_LOGGING_LEVEL", "WARNING")
    with emulator() as endpoint, tempfile.TemporaryDirectory() as home:
        os.environ["STRATOFLOW_ENDPOINT_URL"] = endpoint
        os.environ["STRATOFLOW_BACKEND"] = "aws"
        os.environ["STRATOFLOW_HOME"] = home
        from stratoflow.backends.aws import build_aws_services
        from stratoflow.clock import FakeClock
        from stratoflow.context import set_process_services
        from stratoflow.deployments.models import BundleInfo, Deployment
        from stratoflow.deployments.store import DeploymentStore
        from stratoflow.platform import build_platform
        from stratoflow.resources import ResourceNames, provision
        from stratoflow.scheduler import Scheduler
        from stratoflow.settings import get_settings, load_settings

        get_settings.cache_clear()
        settings = load_settings()
        session = boto3.Session(region_name="us-east-1")
        queues = tuple(("bench", f"q{i}") for i in range(QUEUES))
        names = dataclasses.replace(ResourceNames.from_settings(settings), work_queues=queues)
        provision(session, names, endpoint_url=endpoint)

        calls: collections.Counter[str] = collections.Counter()

        def count(model: Any, **_: Any) -> None:
            calls[f"{model.service_model.service_name}.{model.name}"] += 1

        # Clients copy the session's event hooks when created: register first.
        session.events.register("provide-client-params", count)
        services = build_aws_services(settings, session=session, clock=FakeClock(NOW))
        set_process_services(services)
        platform = build_platform(services, settings)

        started = time.perf_counter()
        collected = _Collect()
        store = DeploymentStore(collected, settings.table_name) if BATCH_SETUP else None
        for i in range(N_DEPLOYMENTS):
            (store or platform.deployments).put(
                Deployment.model_validate(
                    {
                        "name": f"bench-{i:05d}",
                        "entrypoint": "flows.py:work",
                        "flow_name": "work",
                        "schedules": [
                            {"cron": "0 * * * *" if i % DUE_EVERY == 0 else "30 * * * *"}
                        ],
                        "work_pool": "bench",
                        "work_queue": f"q{i % QUEUES}",
                        "bundle": BundleInfo(
                            bucket=settings.code_bucket, key="bundles/x.zip", sha256="0" * 64
                        ),
                        "created": NOW,
                        "updated": NOW,
                    }
                )
            )
        if collected.items:
            _batch_write(platform.backend.dynamodb, settings.table_name, collected.items)
        put_seconds = time.perf_counter() - started

        calls.clear()
        first = Scheduler(platform).tick(NOW)
        first_calls = dict(calls)
        calls.clear()
        second = Scheduler(platform).tick(NOW) if STEADY else None
        second_calls = dict(calls)
        services.backend.close()  # type: ignore[attr-defined]
        set_process_services(None)
        get_settings.cache_clear()

    due = len(range(0, N_DEPLOYMENTS, DUE_EVERY))
    if first.errors or first.created != due or not first.complete:
        raise SystemExit(f"The tick did not schedule every deployment: {first}")
    created = first.created
    steady: dict[str, Any] = {}
    if second is not None:
        steady = {
            "steady_tick_seconds": second.seconds,
            "steady_tick_api_calls": sum(second_calls.values()),
            "steady_calls_by_operation": dict(sorted(second_calls.items())),
        }
    return {
        "deployments": N_DEPLOYMENTS,
        "due_deployments": due,
        "work_queues": QUEUES,
        "put_deployments_seconds": round(put_seconds, 2),
        "batch_setup": BATCH_SETUP,
        "runs_created": created,
        "tick_seconds": first.seconds,
        "runs_created_per_second": round(created / first.seconds, 1),
        "deployments_per_second": round(N_DEPLOYMENTS / first.seconds, 1),
        "pages": first.pages,
        "api_calls_per_created_run": round(sum(first_calls.values()) / created, 3),
        "calls_by_operation": dict(sorted(first_calls.items())),
        **steady,
    }


def print_table(figures: dict[str, Any]) -> None:
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    figures = main()
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing[RESULTS_KEY] = figures
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    print_table(figures)
