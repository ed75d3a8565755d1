"""AWS backend: API calls per task run and per-task overhead against the emulator.

Runs flows of 10,000 sequential and 10,000 mapped trivial tasks with
STRATOFLOW_BACKEND=aws against moto's server on loopback (real HTTP), counting every AWS
API call with botocore's `provide-client-params` event (bench/calls.py: calls, items
written and their write request units, read request units).

It also measures what the table's stream costs on AWS for the same runs: a sample flow
(BENCH_AWS_EVENT_SAMPLE tasks, default 200) and an empty flow are written, their stream
records are read from the emulator's stream and handed to the automations handler's code
(`process_stream_batch` with the automations engine, no automation defined) the way the
Lambda event source mapping would, and the handler's calls and time are counted: what
deriving and storing each task run's events adds (API calls, write units, records per
Lambda invocation, handler seconds per record).

Env: BENCH_AWS_TASKS and BENCH_AWS_MAPPED (default 10,000 each), BENCH_AWS_EVENT_SAMPLE.
Prints a table and merges the figures into bench/results.json under "aws_backend".
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import boto3

from bench.calls import WRITE_OPERATIONS, CallLog, Router, sizes_for, summarize, table_sizes
from stratoflow.emulator import emulator

N_TASKS = int(os.environ.get("BENCH_AWS_TASKS", "10000"))
N_MAPPED = int(os.environ.get("BENCH_AWS_MAPPED", "10000"))
N_SAMPLE = int(os.environ.get("BENCH_AWS_EVENT_SAMPLE", "200"))
RESULTS = Path(__file__).with_name("results.json")


def _mean(sizes: list[int]) -> int | None:
    return round(sum(sizes) / len(sizes)) if sizes else None


def _write_requests(log: CallLog) -> int:
    return sum(v for k, v in log.calls.items() if k.split(".")[1] in WRITE_OPERATIONS)


def main() -> dict[str, Any]:
    os.environ.setdefault("STRATOFLOW_LOGGING_LEVEL", "WARNING")
    with emulator() as endpoint:
        from stratoflow import flow, task
        from stratoflow.automations.engine import AutomationEngine
        from stratoflow.backends.aws import build_aws_services
        from stratoflow.context import set_process_services
        from stratoflow.dev.event_sources import StreamSource
        from stratoflow.events.stream import process_stream_batch
        from stratoflow.platform import build_platform
        from stratoflow.resources import provision
        from stratoflow.settings import load_settings

        session = boto3.Session(region_name="us-east-1")
        provision(session, endpoint_url=endpoint)
        os.environ["STRATOFLOW_ENDPOINT_URL"] = endpoint
        scratch = CallLog()
        router = Router(scratch)
        # Clients copy the session's event hooks when created: register first.
        router.register(session.events)
        settings = load_settings()
        services = build_aws_services(settings, session=session)
        set_process_services(services)
        platform = build_platform(services, settings)
        backend = platform.backend

        @task
        def trivial(x: int) -> int:
            return x + 1

        @flow
        def sequential(n: int) -> int:
            return sum(trivial(i) for i in range(n))

        @flow
        def mapped(n: int) -> int:
            return sum(trivial.map(range(n)).result())

        @flow
        def empty() -> None:
            return None

        # The automations handler's share: records read from the stream (free for a
        # Lambda trigger) are handed over here; what the handler calls is counted apart.
        discard = True
        handler_log = CallLog()
        handled = {"records": 0, "invocations": 0, "seconds": 0.0}

        def invoke(_: str, event: dict[str, Any]) -> dict[str, Any]:
            if discard:
                return {"batchItemFailures": []}
            router.target = handler_log
            started = time.perf_counter()
            try:
                return process_stream_batch(
                    event["Records"], platform, engine_factory=AutomationEngine
                )
            finally:
                handled["seconds"] += time.perf_counter() - started
                handled["records"] += len(event["Records"])
                handled["invocations"] += 1
                router.target = scratch

        stream = StreamSource(platform, invoke, batch_size=100)

        def drain_stream() -> None:
            while stream.poll():  # the events stored make records of their own: read those too
                pass

        empty()  # warm-up: connections, first stream
        drain_stream()
        discard = False

        flow_log = CallLog()
        router.target = flow_log
        started = time.perf_counter()
        empty()
        empty_seconds = time.perf_counter() - started
        router.target = scratch
        drain_stream()
        empty_events = (handler_log.dump(), dict(handled))

        handler_log.clear()
        handled.update(records=0, invocations=0, seconds=0.0)
        sample_log = CallLog()
        router.target = sample_log
        sequential(N_SAMPLE)
        router.target = scratch
        drain_stream()
        sample_events = (handler_log.dump(), dict(handled))
        sizes = table_sizes(backend.dynamodb, backend.table)  # the sample's items, uncounted

        runs: dict[str, Any] = {}
        for name, fn, n in (("sequential", sequential, N_TASKS), ("mapped", mapped, N_MAPPED)):
            log = CallLog()
            router.target = log
            started = time.perf_counter()
            fn(n)
            elapsed = time.perf_counter() - started
            router.target = scratch
            runs[name] = (log, elapsed, n)
        all_sizes = sizes
        for log, _, _ in runs.values():
            all_sizes = sizes_for(backend.dynamodb, backend.table, log, all_sizes)
        all_sizes = sizes_for(backend.dynamodb, backend.table, flow_log, all_sizes)
        task_items = [size for key, (size, _) in sizes.items() if key[1].startswith("TASKRUN#")]
        event_items = [size for key, (size, _) in sizes.items() if key[0].startswith("EVENT#")]
        flow_items = [
            size
            for key, (size, _) in sizes.items()
            if key[0].startswith("FLOWRUN#") and key[1] == "META"
        ]
        set_process_services(None)

    flow_figures = summarize(flow_log, all_sizes)
    empty_calls = flow_figures["api_calls"]
    figures: dict[str, Any] = {
        "tasks": N_TASKS,
        "mapped_tasks": N_MAPPED,
        "flow_run_api_calls_empty_flow": empty_calls,
        "flow_run_wru_empty_flow": flow_figures["dynamodb_wru"],
        "flow_run_calls_by_operation": flow_figures["calls_by_operation"],
        "empty_flow_ms": round(empty_seconds * 1e3, 2),
        "task_run_item_bytes": _mean(task_items),
        "flow_run_item_bytes": _mean(flow_items),
        "event_item_bytes": _mean(event_items),
    }
    for name, (log, elapsed, n) in runs.items():
        prefix = "" if name == "sequential" else "mapped_"
        summary = summarize(log, all_sizes)
        figures |= {
            f"{prefix}api_calls_per_task_run": round((summary["api_calls"] - empty_calls) / n, 3),
            f"{prefix}write_requests_per_task_run": round(_write_requests(log) / n, 3),
            f"{prefix}items_written_per_task_run": round(log.items_written / n, 3),
            f"{prefix}wru_per_task_run": round(
                (summary["dynamodb_wru"] - flow_figures["dynamodb_wru"]) / n, 3
            ),
            f"{prefix}overhead_ms_per_task": round(elapsed / n * 1e3, 3),
            f"{prefix}calls_by_operation": summary["calls_by_operation"],
        }
    figures["events"] = _events_figures(empty_events, sample_events, all_sizes)
    figures["targets"] = {"write_requests_per_task_run": 1.5}
    return figures


def _events_figures(
    empty: tuple[dict[str, Any], dict[str, Any]],
    sample: tuple[dict[str, Any], dict[str, Any]],
    sizes: dict[Any, Any],
) -> dict[str, Any]:
    """What the automations handler did for a flow run (the empty flow) and, by
    difference with the sample flow, for each task run."""
    logs = []
    for dump, _ in (empty, sample):
        log = CallLog()
        log.merge(dump)
        logs.append(summarize(log, sizes))
    (empty_summary, sample_summary), (empty_handled, sample_handled) = logs, (empty[1], sample[1])

    def per_task(key: str) -> float:
        return round((sample_summary[key] - empty_summary[key]) / N_SAMPLE, 3)

    records = sample_handled["records"] - empty_handled["records"]
    return {
        "sample_tasks": N_SAMPLE,
        "per_flow_run": {
            "stream_records": empty_handled["records"],
            "api_calls": empty_summary["api_calls"],
            "dynamodb_wru": empty_summary["dynamodb_wru"],
            "dynamodb_rru": empty_summary["dynamodb_rru"],
            "calls_by_operation": empty_summary["calls_by_operation"],
        },
        "per_task_run": {
            "stream_records": round(records / N_SAMPLE, 3),
            "api_calls": per_task("api_calls"),
            "events_stored": per_task("dynamodb_items_written"),
            "dynamodb_wru": per_task("dynamodb_wru"),
            "dynamodb_rru": per_task("dynamodb_rru"),
        },
        "sample_calls_by_operation": sample_summary["calls_by_operation"],
        "handler_seconds_per_record": round(
            sample_handled["seconds"] / max(1, sample_handled["records"]), 5
        ),
        "records_per_invocation": round(
            sample_handled["records"] / max(1, sample_handled["invocations"]), 1
        ),
    }


if __name__ == "__main__":
    figures = main()
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing["aws_backend"] = figures
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    for key, value in figures.items():
        print(f"{key:<36} {value}")
