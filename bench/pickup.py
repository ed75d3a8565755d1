"""Pickup latency: scheduled start → Running, with one on-prem poller on the emulator.

Deploys a trivial flow, starts a real poller process (`strato worker start`), schedules
runs at staggered start times (each sent with its SQS delay, as the scheduler does) and
reads each run's Running time from its state history. Prints p50/p95/p99 and merges them
into bench/results.json under "pickup".
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3

from stratoflow.emulator import emulator

RUNS = int(os.environ.get("BENCH_PICKUP_RUNS", "200"))
SPACING = float(os.environ.get("BENCH_PICKUP_SPACING", "1.0"))
RESULTS = Path(__file__).with_name("results.json")

FLOW = """
from stratoflow import flow


@flow
def tick(i: int) -> int:
    return i
"""
CONFIG = """
deployments:
  - name: pickup
    entrypoint: flows.py:tick
"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def main() -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="stratoflow-pickup-"))
    project = home / "project"
    project.mkdir()
    (project / "flows.py").write_text(FLOW)
    (project / "stratoflow.yaml").write_text(CONFIG)
    with emulator() as endpoint:
        os.environ.update(
            STRATOFLOW_BACKEND="aws",
            STRATOFLOW_ENDPOINT_URL=endpoint,
            STRATOFLOW_HOME=str(home),
            STRATOFLOW_LOGGING_LEVEL="WARNING",
            STRATOFLOW_LOG_TO_CONSOLE="false",
        )
        from stratoflow.deployments.deploy import deploy_project
        from stratoflow.deployments.runs import schedule_and_send
        from stratoflow.platform import get_platform
        from stratoflow.resources import provision

        provision(boto3.Session(region_name="us-east-1"), endpoint_url=endpoint)
        deploy_project(project)
        platform = get_platform()
        deployment = platform.deployments.get("pickup")
        poller = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stratoflow.cli",
                "worker",
                "start",
                "--pool",
                "default",
                "--limit",
                "8",
                "--name",
                "bench",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            clock = platform.services.clock
            start = clock.now() + timedelta(seconds=5)
            ids = []
            due = {}
            for i in range(RUNS):
                run, _ = schedule_and_send(  # as the scheduler: created with its send recorded
                    platform,
                    deployment,
                    scheduled_time=start + timedelta(seconds=i * SPACING),
                    parameters={"i": i},
                )
                ids.append(run.id)
                due[run.id] = run.expected_start_time
            deadline = time.monotonic() + 5 + RUNS * SPACING + 120
            backend = platform.services.backend
            pending = set(ids)
            while pending and time.monotonic() < deadline:
                time.sleep(2)
                now = clock.now()
                # Only runs already due: reading the others would load the emulator the
                # poller and the runs are using, for nothing.
                for run_id in [r for r in pending if due[r] is None or due[r] <= now]:
                    state = backend.read_flow_run(run_id).state
                    if state is not None and state.is_final():
                        pending.discard(run_id)
        finally:
            poller.terminate()
            poller.wait(timeout=60)
        latencies = []
        claim_latencies: list[float] = []
        for run_id in ids:
            run = backend.read_flow_run(run_id)
            running = next(
                (s for s in [*run.state_history, run.state] if s and s.name == "Running"), None
            )
            if running is not None and run.expected_start_time is not None:
                latencies.append((running.timestamp - run.expected_start_time).total_seconds())
                claimed = next((s for s in run.state_history if s.name == "Pending"), None)
                if claimed is not None:
                    claim_latencies.append(
                        (claimed.timestamp - run.expected_start_time).total_seconds()
                    )
    return {
        "runs": RUNS,
        "completed": RUNS - len(pending),
        "spacing_seconds": SPACING,
        "pickup_p50_seconds": round(statistics.median(latencies), 3),
        "pickup_p95_seconds": round(percentile(latencies, 0.95), 3),
        "pickup_p99_seconds": round(percentile(latencies, 0.99), 3),
        "pickup_min_seconds": round(min(latencies), 3),
        "claim_p50_seconds": round(statistics.median(claim_latencies), 3)
        if claim_latencies
        else None,
        "pickup_over_1s": sum(1 for x in latencies if x > 1.0),
        "latencies_seconds": [round(x, 3) for x in latencies],
        "targets": {"pickup_p50_seconds": 1.0, "pickup_p99_seconds": 2.0},
    }


if __name__ == "__main__":
    figures = main()
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing["pickup"] = figures
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    for key, value in figures.items():
        if key != "latencies_seconds":
            print(f"{key:<24} {value}")
