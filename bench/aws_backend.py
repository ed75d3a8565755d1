"""AWS backend: API calls per task run and per-task overhead against the emulator.

Runs a flow of 1,000 trivial tasks with STRATOFLOW_BACKEND=aws against moto's server on
loopback (real HTTP), counting every AWS API call with botocore's `provide-client-params` event.
Prints a table and merges the figures into bench/results.json under "aws_backend".
"""

from __future__ import annotations

import collections
import json
import os
import time
from pathlib import Path
from typing import Any

import boto3

from stratoflow.emulator import emulator

N_TASKS = int(os.environ.get("BENCH_AWS_TASKS", "1000"))
RESULTS = Path(__file__).with_name("results.json")
WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def main() -> dict[str, Any]:
    os.environ.setdefault("STRATOFLOW_LOGGING_LEVEL", "WARNING")
    with emulator() as endpoint:
        from stratoflow import flow, task
        from stratoflow.backends.aws import build_aws_services
        from stratoflow.context import set_process_services
        from stratoflow.resources import provision
        from stratoflow.settings import load_settings

        session = boto3.Session(region_name="us-east-1")
        provision(session, endpoint_url=endpoint)
        os.environ["STRATOFLOW_ENDPOINT_URL"] = endpoint
        calls: collections.Counter[str] = collections.Counter()
        items_written = 0

        def count(model: Any, params: dict[str, Any], **_: Any) -> None:
            nonlocal items_written
            calls[f"{model.service_model.service_name}.{model.name}"] += 1
            if model.name == "BatchWriteItem":
                items_written += sum(len(v) for v in params["RequestItems"].values())
            elif model.name in WRITE_OPERATIONS:
                items_written += 1

        # Clients copy the session's event hooks when created: register first.
        session.events.register("provide-client-params", count)
        services = build_aws_services(load_settings(), session=session)
        set_process_services(services)

        @task
        def trivial(x: int) -> int:
            return x + 1

        @flow
        def sequential(n: int) -> int:
            return sum(trivial(i) for i in range(n))

        @flow
        def empty() -> None:
            return None

        empty()  # warm-up: connections, first stream
        calls.clear()
        items_written = 0
        started = time.perf_counter()
        empty()
        empty_seconds = time.perf_counter() - started
        empty_calls = sum(calls.values())

        calls.clear()
        items_written = 0
        started = time.perf_counter()
        sequential(N_TASKS)
        elapsed = time.perf_counter() - started
        task_calls = dict(calls)
        write_requests = sum(v for k, v in calls.items() if k.split(".")[1] in WRITE_OPERATIONS)
        set_process_services(None)
    return {
        "tasks": N_TASKS,
        "flow_run_api_calls_empty_flow": empty_calls,
        "empty_flow_ms": round(empty_seconds * 1e3, 2),
        "api_calls_per_task_run": round((sum(task_calls.values()) - empty_calls) / N_TASKS, 3),
        "write_requests_per_task_run": round(write_requests / N_TASKS, 3),
        "items_written_per_task_run": round(items_written / N_TASKS, 3),
        "overhead_ms_per_task": round(elapsed / N_TASKS * 1e3, 3),
        "calls_by_operation": dict(sorted(task_calls.items())),
        "targets": {"write_requests_per_task_run": 1.5},
    }


if __name__ == "__main__":
    figures = main()
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing["aws_backend"] = figures
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    for key, value in figures.items():
        print(f"{key:<32} {value}")
