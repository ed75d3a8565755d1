"""SDK overhead: what stratoflow adds on top of calling plain functions.

Run with `make bench`. Measures, on the local (memory) backend:
- per-task overhead of 10,000 sequential task calls inside one flow,
- per-task overhead of one `task.map()` over 10,000 items,
- the same for `async def` tasks: 10,000 awaited one after the other inside an async
  flow, and 10,000 run together with `asyncio.gather`,
- the duration of a flow call with no tasks, first call after import and warm.
Merges the figures into bench/results.json under "sdk_overhead" and prints a table.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

N_TASKS = int(os.environ.get("BENCH_TASKS", "10000"))
RESULTS = Path(__file__).with_name("results.json")

# Keep the console quiet and results out of the user's home during the benchmark.
os.environ.setdefault("STRATOFLOW_HOME", tempfile.mkdtemp(prefix="stratoflow-bench-"))
os.environ.setdefault("STRATOFLOW_LOGGING_LEVEL", "WARNING")

import_started = time.perf_counter()
from stratoflow import flow, task  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - import_started


def trivial(x: int) -> int:
    return x + 1


trivial_task = task(trivial)


async def async_trivial(x: int) -> int:
    return x + 1


async_trivial_task = task(async_trivial)


@flow
def empty() -> None:
    return None


@flow
def sequential(n: int) -> int:
    total = 0
    for i in range(n):
        total += trivial_task(i)
    return total


@flow
def plain_sequential(n: int) -> int:
    total = 0
    for i in range(n):
        total += trivial(i)
    return total


@flow
def mapped(n: int) -> int:
    return sum(trivial_task.map(range(n)).result())


@flow
async def async_sequential(n: int) -> int:
    total = 0
    for i in range(n):
        total += await async_trivial_task(i)
    return total


@flow
async def async_plain_sequential(n: int) -> int:
    total = 0
    for i in range(n):
        total += await async_trivial(i)
    return total


@flow
async def async_gathered(n: int) -> int:
    return sum(await asyncio.gather(*(async_trivial_task(i) for i in range(n))))


@flow
async def async_plain_gathered(n: int) -> int:
    return sum(await asyncio.gather(*(async_trivial(i) for i in range(n))))


def _run(async_flow: Any) -> Any:
    return lambda n: asyncio.run(async_flow(n))


def _timed(fn: Any, *args: Any) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def _per_task(seconds: float) -> float:
    return round(seconds / N_TASKS * 1e6, 2)


def main() -> dict[str, Any]:
    first_empty = _timed(empty)
    warm_empty = statistics.median(_timed(empty) for _ in range(50))
    baseline = _timed(plain_sequential, N_TASKS)
    seq = min(_timed(sequential, N_TASKS) for _ in range(3))
    mapped_time = min(_timed(mapped, N_TASKS) for _ in range(3))
    async_baseline = min(_timed(_run(async_plain_sequential), N_TASKS) for _ in range(3))
    async_seq = min(_timed(_run(async_sequential), N_TASKS) for _ in range(3))
    gather_baseline = min(_timed(_run(async_plain_gathered), N_TASKS) for _ in range(3))
    gathered = min(_timed(_run(async_gathered), N_TASKS) for _ in range(3))
    return {
        "python": sys.version.split()[0],
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "tasks": N_TASKS,
        "import_seconds": round(IMPORT_SECONDS, 4),
        "empty_flow_first_call_ms": round(first_empty * 1e3, 3),
        "empty_flow_warm_call_ms": round(warm_empty * 1e3, 3),
        "sequential_overhead_us_per_task": round((seq - baseline) / N_TASKS * 1e6, 2),
        "mapped_overhead_us_per_task": round((mapped_time - baseline) / N_TASKS * 1e6, 2),
        "async_sequential_overhead_us_per_task": _per_task(async_seq - async_baseline),
        "async_gather_overhead_us_per_task": _per_task(gathered - gather_baseline),
        "targets": {
            "sequential_overhead_us_per_task": 50,
            "mapped_overhead_us_per_task": 150,
            "async_sequential_overhead_us_per_task": 50,
            "async_gather_overhead_us_per_task": 50,
            "empty_flow_first_call_ms": 5,
        },
    }


if __name__ == "__main__":
    results = main()
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing["sdk_overhead"] = results
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    width = max(len(k) for k in results)
    for key, value in results.items():
        if key != "targets":
            target = results["targets"].get(key)
            suffix = f"   (target <= {target})" if target is not None else ""
            print(f"{key:<{width}}  {value}{suffix}")
