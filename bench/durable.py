"""What durable runs cost (docs/durability.md), on the emulator (moto's server on
loopback, real HTTP):

- Recording: the bytes the replay fields add to a task run's item, and the API calls of
  a first attempt of BENCH_DURABLE_TASKS tasks (default 100) whose results are recorded
  (JSON in the item, as every deployed run's are).
- Replay: the API calls and time of the second attempt, which replays every task run
  the first completed (results in the items; then results in S3, one GetObject each).
- Resume latency: `resume_flow_run` → the run's next Running state, with a real poller
  (`strato worker start`) waiting; median of BENCH_DURABLE_RESUMES (default 5).
- Durable sleep: wake-up lateness of 3-second `stratoflow.sleep`s (the run's Running
  state after the wake-up time), median of 3.

Merges the figures into bench/results.json under "durable".
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench._emulated import counted_installation
from bench.calls import CallLog, Router, attribute_size

N_TASKS = int(os.environ.get("BENCH_DURABLE_TASKS", "100"))
RESUMES = int(os.environ.get("BENCH_DURABLE_RESUMES", "5"))
RESULTS = Path(__file__).with_name("results.json")

FLOWS = """
import stratoflow
from stratoflow import flow, task
from stratoflow.flow_runs import suspend_flow_run
from stratoflow.runtime import flow_run


@task
def small(i: int) -> int:
    return i


@task
def large(i: int) -> str:
    return str(i) * 3000


@flow(retries=1, retry_delay_seconds=0)
def chain(n: int, big: bool = False) -> int:
    total = sum(len(str(large(i) if big else small(i))) for i in range(n))
    if flow_run.run_count < 2:
        raise RuntimeError("the first attempt fails after its tasks")
    return total


@flow
def approve() -> str:
    suspend_flow_run(timeout=600)
    return "resumed"


@flow
def nap(seconds: float = 3) -> str:
    stratoflow.sleep(seconds)
    return "woke"
"""
CONFIG = """
deployments:
  - {name: chain, entrypoint: "flows.py:chain"}
  - {name: approve, entrypoint: "flows.py:approve"}
  - {name: nap, entrypoint: "flows.py:nap"}
"""


def _replay_bytes(item: dict[str, Any]) -> int:
    return sum(
        len(name) + attribute_size(item[name])
        for name in ("replay_key", "call_index", "attempt")
        if name in item
    )


def _attempts(platform: Any, router: Router, scratch: CallLog, big: bool) -> dict[str, Any]:
    from stratoflow.deployments.runs import schedule_flow_run
    from stratoflow.workers.execute import execute_flow_run

    backend = platform.services.backend
    run, _ = schedule_flow_run(
        platform,
        platform.deployments.get("chain"),
        scheduled_time=platform.services.clock.now(),
        parameters={"n": N_TASKS, "big": big},
    )
    figures: dict[str, Any] = {}
    for attempt in ("first", "replay"):
        log = CallLog()
        router.target = log
        started = time.perf_counter()
        state = execute_flow_run(run.id, platform, worker="bench")
        seconds = time.perf_counter() - started
        backend.task_runs.flush()
        router.target = scratch
        figures[attempt] = {
            "state": state.name,
            "calls": sum(log.calls.values()),
            "by_operation": dict(sorted(log.calls.items())),
            "seconds": round(seconds, 3),
            "ms_per_task": round(seconds / N_TASKS * 1000, 3),
        }
    assert figures["replay"]["state"] == "Completed", figures
    items = backend.dynamodb.query(
        TableName=backend.table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :t)",
        ExpressionAttributeValues={":pk": {"S": f"FLOWRUN#{run.id}"}, ":t": {"S": "TASKRUN#"}},
    )["Items"]
    figures["task_run_items"] = len(items)
    figures["replay_field_bytes_per_item"] = round(
        statistics.mean(_replay_bytes(i) for i in items), 1
    )
    return figures


def _with_poller(platform: Any, env: dict[str, str]) -> dict[str, Any]:
    from stratoflow.deployments.runs import run_deployment
    from stratoflow.flow_runs import resume_flow_run
    from stratoflow.states import StateType

    backend = platform.services.backend
    poller = subprocess.Popen(
        [sys.executable, "-m", "stratoflow.cli", "worker", "start", "--wait-seconds", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def wait_for(run_id: str, done: Any, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = backend.read_flow_run(run_id)
            if done(run):
                return run
            time.sleep(0.05)
        raise TimeoutError(f"flow run {run_id}: {backend.read_flow_run(run_id).state!r}")

    try:
        latencies = []
        for _ in range(RESUMES):
            run = run_deployment("approve", timeout=0)
            wait_for(run.id, lambda r: r.state is not None and r.state.name == "Suspended")
            asked = datetime.now().astimezone()
            resume_flow_run(run.id)
            done = wait_for(run.id, lambda r: r.state is not None and r.state.is_final())
            running = next(
                s
                for s in [*done.state_history, done.state]
                if s.type is StateType.RUNNING and s.timestamp > asked
            )
            latencies.append((running.timestamp - asked).total_seconds())
        lateness = []
        for _ in range(3):
            run = run_deployment("nap", parameters={"seconds": 3}, timeout=0)
            done = wait_for(run.id, lambda r: r.state is not None and r.state.is_final())
            history = [*done.state_history, done.state]
            sleeping = next(s for s in history if s.name == "Sleeping")
            wake = datetime.fromisoformat(sleeping.details["scheduled_time"])
            woke = next(s for s in history if s.type is StateType.RUNNING and s.timestamp > wake)
            lateness.append((woke.timestamp - wake).total_seconds())
    finally:
        poller.terminate()
        poller.wait(timeout=30)
    return {
        "resume_latency_seconds": [round(v, 3) for v in latencies],
        "resume_latency_median_seconds": round(statistics.median(latencies), 3),
        "sleep_wake_lateness_seconds": [round(v, 3) for v in lateness],
        "sleep_wake_lateness_median_seconds": round(statistics.median(lateness), 3),
    }


def main() -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="stratoflow-durable-"))
    project = home / "project"
    project.mkdir()
    (project / "flows.py").write_text(FLOWS)
    (project / "stratoflow.yaml").write_text(CONFIG)
    with counted_installation(home) as counted:
        from stratoflow.deployments.deploy import deploy_project

        platform, router, scratch = counted.platform, counted.router, counted.scratch
        deploy_project(project)
        figures: dict[str, Any] = {
            "tasks_per_run": N_TASKS,
            "inline_results": _attempts(platform, router, scratch, big=False),
            "s3_results": _attempts(platform, router, scratch, big=True),
            **_with_poller(platform, dict(os.environ)),
        }
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing["durable"] = figures
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
