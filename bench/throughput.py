"""Throughput: flow runs completed per second with 1, 2 and 4 pollers, on the emulator.

Deploys a trivial flow, starts P real pollers (`strato worker start --pool bench-P
--limit L`, each with its warm processes), waits until they are ready, then creates a
batch of runs all due at the same instant (each sent with its SQS delay, as the
scheduler does) and reads every run's start and end time from its record. Throughput
is the batch divided by the time from the first run's start to the last run's end.

Each poller count has a work pool of its own (same flow, one deployment per pool): a
stopping poller finishes its current long poll (up to 20 s) before it exits, and on its
own pool it can do so while the next batch runs, without touching that batch's messages.

The same runs count the AWS API calls of the happy path of a deployed flow run, across
every process: the runs' creation here (what the scheduler does per run), the pollers
and the flow-run processes (bench/callcount/sitecustomize.py hooks their botocore
sessions). Per flow run, that includes the pollers' share of idle long polls and
heartbeats over the benchmark's duration. Flow-run processes log at the default level
(INFO) and ship their lines to CloudWatch Logs, so log bytes per flow run are real too.
At the end, the table's stream records are handed to the automations handler's code (as
the Lambda event source mapping would, no automation defined) and its calls counted:
the events each flow run derives and stores.

Env: BENCH_THROUGHPUT_RUNS (runs per batch, default 30: the burst of the target),
BENCH_THROUGHPUT_POLLERS (default "1,2,4"), BENCH_THROUGHPUT_LIMIT (runs at once per
poller, default 4).
Merges the figures into bench/results.json under "throughput".
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3

from bench.calls import (
    CallLog,
    Router,
    per,
    sizes_for,
    stream_write_units,
    summarize,
    table_sizes,
)
from stratoflow.emulator import emulator

RUNS = int(os.environ.get("BENCH_THROUGHPUT_RUNS", "30"))
POLLERS = tuple(int(p) for p in os.environ.get("BENCH_THROUGHPUT_POLLERS", "1,2,4").split(","))
LIMIT = int(os.environ.get("BENCH_THROUGHPUT_LIMIT", "4"))
LEAD_SECONDS = 3.0
"""The batch is due this long after its runs are created (creation is not measured)."""
SETTLE_SECONDS = 3.0
"""After the pollers' first heartbeats: their warm processes finish importing."""
RESULTS = Path(__file__).with_name("results.json")
CALLCOUNT = Path(__file__).with_name("callcount")

FLOW = """
from stratoflow import flow


@flow
def tick(i: int) -> int:
    return i
"""


def pool_name(pollers: int) -> str:
    return f"bench-{pollers}"


def project_config() -> str:
    pools = "".join(f"  {pool_name(p)}:\n    queues:\n      - name: default\n" for p in POLLERS)
    deployments = "".join(
        f"  - name: throughput-{p}\n    entrypoint: flows.py:tick\n    work_pool: {pool_name(p)}\n"
        for p in POLLERS
    )
    return f"work_pools:\n{pools}\ndeployments:\n{deployments}"


def _start_pollers(count: int, calls_dir: Path) -> list[subprocess.Popen[bytes]]:
    env = dict(os.environ)
    env["STRATOFLOW_BENCH_CALLS"] = str(calls_dir)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(CALLCOUNT), env.get("PYTHONPATH", "")) if p)
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stratoflow.cli",
                "worker",
                "start",
                "--pool",
                pool_name(count),
                "--limit",
                str(LIMIT),
                "--name",
                f"bench-{count}-{i}",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(count)
    ]


def _wait(pollers: list[subprocess.Popen[bytes]]) -> None:
    for poller in pollers:
        try:
            poller.wait(timeout=60)
        except subprocess.TimeoutExpired:
            poller.kill()
            poller.wait()


def role(argv: list[str]) -> str:
    """What a counted process was, from its command line."""
    if "worker" in argv:
        return "worker"
    if "flow-run" in argv:
        return "flow_run_process"
    return "other"


def _merge_logs(directory: Path, into: CallLog, roles: dict[str, CallLog]) -> int:
    files = sorted(directory.glob("*.json"))
    for path in files:
        dump = json.loads(path.read_text())
        into.merge(dump)
        roles.setdefault(role(dump.get("argv") or []), CallLog()).merge(dump)
    return len(files)


def main() -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="stratoflow-throughput-"))
    project = home / "project"
    project.mkdir()
    (project / "flows.py").write_text(FLOW)
    (project / "stratoflow.yaml").write_text(project_config())
    scratch = CallLog()
    create_log = CallLog()
    handler_log = CallLog()
    # This process's calls count where `router.target` says: the runs' creation (what
    # the scheduler does per run) and the automations handler's work; not the waiting.
    router = Router(scratch)
    router.register_everywhere()

    with emulator() as endpoint:
        os.environ.update(
            STRATOFLOW_BACKEND="aws",
            STRATOFLOW_ENDPOINT_URL=endpoint,
            STRATOFLOW_HOME=str(home),
            STRATOFLOW_LOG_TO_CONSOLE="false",
        )
        os.environ.pop("STRATOFLOW_LOGGING_LEVEL", None)  # the default (INFO): logs shipped
        from stratoflow.automations.engine import AutomationEngine
        from stratoflow.deployments.deploy import deploy_project
        from stratoflow.deployments.runs import schedule_and_send
        from stratoflow.dev.event_sources import StreamSource
        from stratoflow.events.stream import process_stream_batch
        from stratoflow.platform import get_platform
        from stratoflow.resources import ResourceNames, provision
        from stratoflow.settings import get_settings
        from stratoflow.workers import registry

        names = dataclasses.replace(
            ResourceNames.from_settings(get_settings()),
            work_queues=tuple((pool_name(p), "default") for p in POLLERS),
        )
        provision(boto3.Session(region_name="us-east-1"), names, endpoint_url=endpoint)
        deploy_project(project)
        platform = get_platform()
        backend = platform.services.backend
        clock = platform.services.clock
        handled = {"records": 0, "invocations": 0, "seconds": 0.0}
        billed = {"runs": 0, "events": 0}
        """Write units of every write the stream reports (stream_write_units): what the
        runs (and their workers) wrote, and the event items the handler stored."""
        discard = True

        def invoke(_: str, event: dict[str, Any]) -> dict[str, Any]:
            if discard:
                return {"batchItemFailures": []}
            for record in event["Records"]:
                key = record["dynamodb"]["Keys"]["pk"]["S"]
                billed["events" if key.startswith("EVENT#") else "runs"] += sum(
                    stream_write_units(record)
                )
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
        while stream.poll():  # the set-up's records (deployments, pools): not counted
            pass
        discard = False
        counted = CallLog()
        roles: dict[str, CallLog] = {}
        batches = []
        all_pollers: list[subprocess.Popen[bytes]] = []
        total_runs = 0
        started_all = time.monotonic()
        calls_dir = home / "calls"
        calls_dir.mkdir()
        for count in POLLERS:
            deployment = platform.deployments.get(f"throughput-{count}")
            phase = time.monotonic()
            pollers = _start_pollers(count, calls_dir)
            all_pollers += pollers
            try:
                deadline = time.monotonic() + 60
                while (
                    len(registry.list_workers(platform, pool_name(count))) < count
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.2)
                time.sleep(SETTLE_SECONDS)
                ready = time.monotonic()
                router.target = create_log
                due = clock.now() + timedelta(seconds=LEAD_SECONDS)
                ids = []
                for i in range(RUNS):
                    run, _ = schedule_and_send(  # as the scheduler does it
                        platform, deployment, scheduled_time=due, parameters={"i": i}
                    )
                    ids.append(run.id)
                router.target = scratch
                pending = set(ids)
                deadline = time.monotonic() + LEAD_SECONDS + 300
                while pending and time.monotonic() < deadline:
                    time.sleep(0.5)
                    for run_id in list(pending):
                        state = backend.read_flow_run(run_id).state
                        if state is not None and state.is_final():
                            pending.discard(run_id)
                finished = time.monotonic()
            finally:
                for poller in pollers:  # exits after its current long poll
                    poller.send_signal(signal.SIGTERM)
            runs = [backend.read_flow_run(run_id) for run_id in ids]
            starts = [r.start_time for r in runs if r.start_time is not None]
            ends = [r.end_time for r in runs if r.end_time is not None]
            completed = sum(1 for r in runs if r.state is not None and r.state.name == "Completed")
            span = (max(ends) - min(starts)).total_seconds() if starts and ends else None
            from_due = (max(ends) - due).total_seconds() if ends else None
            batches.append(
                {
                    "pollers": count,
                    "limit_per_poller": LIMIT,
                    "runs": RUNS,
                    "completed": completed,
                    "first_start_to_last_end_seconds": round(span, 3) if span else None,
                    "runs_per_second": round(completed / span, 2) if span else None,
                    "due_to_last_end_seconds": round(from_due, 3) if from_due else None,
                    "first_start_after_due_seconds": round((min(starts) - due).total_seconds(), 3)
                    if starts
                    else None,
                    "phase_seconds": {
                        "start_pollers": round(ready - phase, 1),
                        "batch": round(finished - ready, 1),
                    },
                }
            )
            total_runs += completed
        elapsed = time.monotonic() - started_all
        # What the automations Lambda does with the stream records of all of the above
        # (runs, workers' heartbeats), no automation defined; while the last pollers
        # finish their long poll, then once more for their last records.
        while stream.poll():  # the events stored make records of their own: read those too
            pass
        _wait(all_pollers)
        while stream.poll():
            pass
        processes = _merge_logs(calls_dir, counted, roles)
        # Sizes of what was written, read with a client whose calls count nowhere.
        sizes = table_sizes(backend.dynamodb, backend.table)
        run_items = sorted(
            size
            for (pk, sk), (size, _) in sizes.items()
            if pk.startswith("FLOWRUN#") and sk == "META"
        )
        for log in (counted, create_log, handler_log):
            sizes = sizes_for(backend.dynamodb, backend.table, log, sizes)
    shutil.rmtree(home, ignore_errors=True)
    counted.merge(create_log.dump())
    events = summarize(handler_log, sizes)
    happy = summarize(counted, sizes)
    # The request-based estimates of write units, replaced by the stream's exact ones
    # (a refused conditional write reports nothing there: none in this happy path).
    estimated = {"runs": happy["dynamodb_wru"], "events": events["dynamodb_wru"]}
    happy["dynamodb_wru"] = billed["runs"]
    events["dynamodb_wru"] = billed["events"]
    created = summarize(create_log, sizes)
    return {
        "batches": batches,
        "runs_per_second": {str(b["pollers"]): b["runs_per_second"] for b in batches},
        "flow_runs_counted": total_runs,
        "processes_counted": processes,
        "seconds": round(elapsed, 1),
        "per_flow_run": per(happy, total_runs),
        "per_flow_run_creation": per(created, total_runs),
        "dynamodb_wru_estimated_from_requests_per_flow_run": {
            k: round(v / total_runs, 3) for k, v in estimated.items()
        },
        "flow_run_item_bytes": {
            "min": run_items[0],
            "median": run_items[len(run_items) // 2],
            "max": run_items[-1],
        },
        "events_per_flow_run": {
            "stream_records": round(handled["records"] / total_runs, 3),
            **per(events, total_runs),
            "calls_by_operation": {
                k: round(v / total_runs, 3) for k, v in events["calls_by_operation"].items()
            },
        },
        "events_handler_seconds_per_record": round(
            handled["seconds"] / max(1, handled["records"]), 5
        ),
        "events_records_per_invocation": round(
            handled["records"] / max(1, handled["invocations"]), 1
        ),
        "per_flow_run_by_process": {
            name: {k: round(v / total_runs, 3) for k, v in sorted(log.calls.items())}
            for name, log in sorted({"creation": create_log, **roles}.items())
        },
        "calls_by_operation_per_flow_run": {
            k: round(v / total_runs, 3) for k, v in happy["calls_by_operation"].items()
        },
    }


if __name__ == "__main__":
    figures = main()
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing["throughput"] = figures
    RESULTS.write_text(json.dumps(existing, indent=2, default=str) + "\n")
    for batch in figures["batches"]:
        print(
            f"{batch['pollers']} poller(s) x limit {batch['limit_per_poller']}: "
            f"{batch['completed']}/{batch['runs']} runs in "
            f"{batch['first_start_to_last_end_seconds']} s = {batch['runs_per_second']} runs/s"
        )
    for key, value in figures["per_flow_run"].items():
        print(f"per flow run  {key:<24} {value}")
