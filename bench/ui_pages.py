"""How long the UI's pages take to render against the emulator (docs/ui.md).

An emulated installation with BENCH_UI_RUNS (default 200) flow runs of the last day,
each with three task runs, and a signed-in operator session; each page is requested
BENCH_UI_REPEATS (default 9) times through the API Lambda's handler with a real
Function URL event (the dev server's), after one warm-up request; the median is the
figure. Target: a page of 50 runs (`/flow-runs`) in under 500 ms. Merges "ui_pages"
into bench/results.json.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench._emulated import counted_installation

RESULTS = Path(__file__).with_name("results.json")
RUNS = int(os.environ.get("BENCH_UI_RUNS", "200"))
REPEATS = int(os.environ.get("BENCH_UI_REPEATS", "9"))
TARGET_MS = 500


def _seed(services: Any) -> str:
    """RUNS finished runs over the last day, three task runs each; one run's id."""
    from stratoflow.models import FlowRun, TaskRun
    from stratoflow.run_ids import new_flow_run_id
    from stratoflow.states import Completed, Failed, Pending, Running, Scheduled

    backend = services.backend
    now = services.clock.now()
    last = ""
    for index in range(RUNS):
        created = now - timedelta(minutes=7 * index)
        run = FlowRun(
            id=new_flow_run_id("default"),
            name=f"bench-run-{index}",
            flow_name="etl",
            deployment_name="nightly-etl",
            work_pool_name="default",
            work_queue_name="default",
            parameters={"rows": index},
            created=created,
            state=Scheduled(),
        )
        backend.create_flow_run(run)
        end = Failed() if index % 10 == 0 else Completed()
        for state in (Pending(), Running(), end):
            backend.set_flow_run_state(run.id, state, force=True)
        for task_index in range(3):
            backend.create_task_run(
                TaskRun(
                    id=f"{run.id}-t{task_index}",
                    name=f"step-{task_index}",
                    task_key="step",
                    dynamic_key=str(task_index),
                    task_name="step",
                    flow_run_id=run.id,
                    state=Completed(),
                    start_time=created + timedelta(seconds=task_index),
                    end_time=created + timedelta(seconds=task_index + 1),
                )
            )
        last = run.id
    backend.flush()
    return last


def _time_page(handler: Any, path: str, cookie: str) -> dict[str, Any]:
    from stratoflow.ui.devserver import LambdaContextStub, function_url_event

    headers = [("Host", "127.0.0.1:8000"), ("Cookie", cookie), ("x-forwarded-proto", "http")]
    event = function_url_event("GET", path, headers, b"")
    answer = handler(event, LambdaContextStub())  # warm-up: templates compiled, clients made
    assert answer["statusCode"] == 200, answer
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        answer = handler(function_url_event("GET", path, headers, b""), LambdaContextStub())
        times.append((time.perf_counter() - started) * 1000)
        assert answer["statusCode"] == 200
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def main() -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="stratoflow-bench-ui-") as home,
        counted_installation(Path(home)) as installation,
    ):
        from stratoflow.ui.app import handler
        from stratoflow.ui.auth import session_store

        run_id = _seed(installation.services)
        session_id, _ = session_store().create("bench", "operator", timedelta(hours=1))
        cookie = f"stratoflow_session={session_id}"
        pages = {
            "flow_runs_50": _time_page(handler, "/flow-runs", cookie),
            "dashboard": _time_page(handler, "/", cookie),
            "flow_run": _time_page(handler, f"/flow-runs/{run_id}", cookie),
        }
    figures = {
        "runs": RUNS,
        "repeats": REPEATS,
        "pages": pages,
        "targets": {"flow_runs_50_median_ms": TARGET_MS},
    }
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing["ui_pages"] = figures
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
