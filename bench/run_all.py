"""Every benchmark, one after the other, on the embedded stack (`make bench`).

Each benchmark runs in a fresh process (its own emulator, settings and imports) and
merges its figures into bench/results.json; this script starts from an empty file, adds
the machine, the load average before each step (other jobs may share the machine) and
the cost model (bench/cost.py), prints one table with the targets and pass/fail, and
draws bench/results.png. Exit status 1 if a benchmark failed to run (a figure missing
its target is reported, not an error).

BENCH_ONLY=name,name runs a subset (names: see STEPS).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cost

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results.json"
CHART = HERE / "results.png"
BUDGET_SECONDS = 600

STEPS: list[tuple[str, str, dict[str, str]]] = [
    ("sdk_overhead", "bench.sdk_overhead", {}),
    ("aws_backend", "bench.aws_backend", {}),
    (
        "scheduler",
        "bench.scheduler",
        {"BENCH_SCHEDULER_BATCH_SETUP": "1", "BENCH_SCHEDULER_STEADY": "1"},
    ),
    (
        "scheduler_10000",
        "bench.scheduler",
        {
            "BENCH_DEPLOYMENTS": "10000",
            "BENCH_DUE_EVERY": "50",
            "BENCH_SCHEDULER_BATCH_SETUP": "1",
            "BENCH_SCHEDULER_KEY": "scheduler_10000",
        },
    ),
    ("pickup", "bench.pickup", {}),
    ("throughput", "bench.throughput", {}),
    ("process_start", "bench.process_start", {}),
    ("cold_start", "bench.cold_start", {}),
    ("result_signing", "bench.result_signing", {}),
    ("durable", "bench.durable", {}),
    ("idle", "bench.idle", {}),
    ("ui_pages", "bench.ui_pages", {}),
]
"""(name, module, environment): the order keeps the long pickup run in the middle, where
the machine is warm, and the CPU-bound steps away from each other."""


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def run_steps(only: set[str] | None) -> dict[str, Any]:
    steps: dict[str, Any] = {}
    for name, module, env in STEPS:
        if only and name not in only:
            continue
        print(f"\n=== {name}: python -m {module} {_env_text(env)}".rstrip(), flush=True)
        load = _load()
        started = time.monotonic()
        returncode = subprocess.run(
            [sys.executable, "-m", module], cwd=ROOT, env={**os.environ, **env}, check=False
        ).returncode
        steps[name] = {
            "command": f"{_env_text(env)} python -m {module}".strip(),
            "seconds": round(time.monotonic() - started, 1),
            "load_before": load,
            "load_after": _load(),
            "ok": returncode == 0,
        }
    return steps


def _env_text(env: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in env.items())


# The table


def _get(results: dict[str, Any], *path: str) -> Any:
    value: Any = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


Row = tuple[str, Any, str, Callable[[Any], bool] | None]


def rows(results: dict[str, Any]) -> list[Row]:
    """(figure, measured, target text, passes) for the table; passes None: no target."""
    g = lambda *path: _get(results, *path)  # noqa: E731
    table: list[Row] = [
        (
            "SDK: sequential task overhead, local (µs)",
            g("sdk_overhead", "sequential_overhead_us_per_task"),
            "<= 50",
            lambda v: v <= 50,
        ),
        (
            "SDK: mapped task overhead, local (µs)",
            g("sdk_overhead", "mapped_overhead_us_per_task"),
            "<= 150",
            lambda v: v <= 150,
        ),
        (
            "SDK: first flow call after import (ms)",
            g("sdk_overhead", "empty_flow_first_call_ms"),
            "< 5",
            lambda v: v < 5,
        ),
        (
            "AWS: sequential task, end to end (ms/task)",
            g("aws_backend", "overhead_ms_per_task"),
            "",
            None,
        ),
        (
            "AWS: mapped task, end to end (ms/task)",
            g("aws_backend", "mapped_overhead_ms_per_task"),
            "",
            None,
        ),
        (
            "AWS: write requests per task run",
            g("aws_backend", "write_requests_per_task_run"),
            "<= 1.5",
            lambda v: v <= 1.5,
        ),
        ("AWS: API calls per task run (SDK)", g("aws_backend", "api_calls_per_task_run"), "", None),
        ("AWS: write units per task run (item)", g("aws_backend", "wru_per_task_run"), "", None),
        (
            "AWS: write units per task run (events)",
            g("aws_backend", "events", "per_task_run", "dynamodb_wru"),
            "",
            None,
        ),
        (
            "AWS: API calls per deployed flow run",
            g("throughput", "per_flow_run", "api_calls"),
            "",
            None,
        ),
        (
            "Cost: $ per million task runs (10/flow)",
            g("cost", "usd_per_million_task_runs"),
            "< 2",
            lambda v: v < 2,
        ),
        (
            "Cost: $ per million task runs (100/flow)",
            g("cost", "usd_per_million_task_runs_by_tasks_per_flow_run", "100"),
            "< 1",
            lambda v: v < 1,
        ),
        (
            "Cost: $ per million deployed flow runs",
            g("cost", "usd_per_million_flow_runs"),
            "< 10",
            lambda v: v < 10,
        ),
        (
            "Cost: $ per million task runs, no stored events",
            g("cost", "usd_per_million_task_runs_without_stored_events", "10"),
            "< 2",
            lambda v: v < 2,
        ),
        ("Pickup p50 (s)", g("pickup", "pickup_p50_seconds"), "<= 1.0", lambda v: v <= 1.0),
        ("Pickup p95 (s)", g("pickup", "pickup_p95_seconds"), "", None),
        ("Pickup p99 (s)", g("pickup", "pickup_p99_seconds"), "<= 2.0", lambda v: v <= 2.0),
        (
            "Scheduler: runs created/s, 2,000 due",
            g("scheduler", "runs_created_per_second"),
            "",
            None,
        ),
        (
            "Scheduler: tick over 2,000 deployments (s)",
            g("scheduler", "tick_seconds"),
            "< 60",
            lambda v: v < 60,
        ),
        (
            "Scheduler: API calls of a steady tick, 2,000 deployments",
            g("scheduler", "steady_tick_api_calls"),
            # + 12: the tick's fixed queries (cursor, orphans, Late, the sweeps of
            # running, pending, cancelling, crashed and paused runs, background task runs).
            "<= 2 per 100 deployments + 12",
            lambda v: v <= 2 * 20 + 12,
        ),
        (
            "Scheduler: runs created/s, 10,000 (2% due)",
            g("scheduler_10000", "runs_created_per_second"),
            "",
            None,
        ),
        (
            "Scheduler: tick over 10,000 deployments (s)",
            g("scheduler_10000", "tick_seconds"),
            "< 60",
            lambda v: v < 60,
        ),
        (
            "Signing: extra API calls of a run with pickled results",
            g("result_signing", "extra_calls_per_pickled_run"),
            "",
            None,
        ),
        (
            "Signing: HMAC sign (µs per KB)",
            g("result_signing", "sign_us_per_kb"),
            "",
            None,
        ),
        (
            "Durable: replay bytes per task-run item",
            g("durable", "inline_results", "replay_field_bytes_per_item"),
            "",
            None,
        ),
        (
            "Durable: API calls to replay 100 task runs (inline results)",
            g("durable", "inline_results", "replay", "calls"),
            "",
            None,
        ),
        (
            "Durable: resume call -> Running, median (s)",
            g("durable", "resume_latency_median_seconds"),
            "",
            None,
        ),
        (
            "Durable: sleep wake-up lateness, median (s)",
            g("durable", "sleep_wake_lateness_median_seconds"),
            "",
            None,
        ),
        (
            "Idle: $ a month, without dashboard and alarms",
            g("idle", "usd_a_month_without_dashboard_and_alarms"),
            "< 1",
            lambda v: v < 1,
        ),
        (
            "UI: a page of 50 runs, emulator (ms, median)",
            g("ui_pages", "pages", "flow_runs_50", "median_ms"),
            "< 500",
            lambda v: v < 500,
        ),
        (
            "UI: dashboard, emulator (ms, median)",
            g("ui_pages", "pages", "dashboard", "median_ms"),
            "",
            None,
        ),
        (
            "UI: a run's page, emulator (ms, median)",
            g("ui_pages", "pages", "flow_run", "median_ms"),
            "",
            None,
        ),
    ]
    for batch in g("throughput", "batches") or []:
        if batch["pollers"] == 1:
            # The target is for a burst of 30 (fewer runs would pass it more easily).
            target = batch["runs"] >= 30
            table.append(
                (
                    f"Throughput: {batch['runs']} runs at once, 1 poller (s)",
                    batch["first_start_to_last_end_seconds"],
                    "< 8 (30 runs)" if target else "",
                    (lambda v: v < 8) if target else None,
                )
            )
    for pollers, rate in (g("throughput", "runs_per_second") or {}).items():
        table.append((f"Throughput: flow runs/s, {pollers} poller(s)", rate, "", None))
    for method in ("forked", "spawned"):
        table.append(
            (
                f"Flow run process, {method}: CPU (s, median)",
                g("process_start", method, "cpu_seconds"),
                "",
                None,
            )
        )
    for name, handler in (g("cold_start", "handlers") or {}).items():
        table.append(
            (
                f"Cold start: import {name} (ms, median)",
                handler["import_ms_median"],
                "< 300",
                lambda v: v < 300,
            )
        )
    return table


def print_table(results: dict[str, Any], total_seconds: float) -> None:
    table = rows(results)
    table.append(
        (
            "make bench: all steps (s)",
            round(total_seconds, 1),
            f"< {BUDGET_SECONDS}",
            lambda v: v < BUDGET_SECONDS,
        )
    )
    width = max(len(r[0]) for r in table)
    print(f"\n{'Figure':<{width}}  {'Measured':>10}  {'Target':>8}  Result")
    print("-" * (width + 32))
    for figure, value, target, passes in table:
        if value is None:
            verdict, shown = "missing", "-"
        else:
            verdict = "" if passes is None else ("pass" if passes(value) else "FAIL")
            shown = (
                f"{value:,.3f}".rstrip("0").rstrip(".")
                if isinstance(value, float)
                else f"{value:,}"
            )
        print(f"{figure:<{width}}  {shown:>10}  {target:>8}  {verdict}")
    meta = results["machine"]
    print(
        f"\n{meta['cpus']} cpus, Python {meta['python']}; load average before each step: "
        + ", ".join(f"{k} {v['load_before'][0]}" for k, v in results["steps"].items())
    )


# The chart


def draw(results: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[dev]'): no chart", file=sys.stderr)
        return False
    g = lambda *p: _get(results, *p)  # noqa: E731
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    fig.suptitle(
        f"stratoflow benchmarks — {results['machine']['cpus']} cpus, "
        f"{results['finished'][:16]} UTC, {results['total_seconds']:.0f} s"
    )

    def bars(
        ax: Any,
        labels: list[str],
        values: list[Any],
        title: str,
        unit: str,
        target: float | None = None,
    ) -> None:
        shown = [v if v is not None else 0 for v in values]
        ax.bar(labels, shown, color="#4c72b0")
        for i, v in enumerate(values):
            ax.annotate(
                "-" if v is None else f"{v:g}", (i, shown[i]), ha="center", va="bottom", fontsize=8
            )
        if target is not None:
            ax.axhline(
                target, color="#c44e52", linestyle="--", linewidth=1, label=f"target {target:g}"
            )
            ax.legend(fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit, fontsize=9)
        ax.tick_params(axis="x", labelsize=8, rotation=15)

    bars(
        axes[0][0],
        ["sequential\nlocal", "mapped\nlocal", "sequential\nAWS", "mapped\nAWS"],
        [
            g("sdk_overhead", "sequential_overhead_us_per_task"),
            g("sdk_overhead", "mapped_overhead_us_per_task"),
            _ms_to_us(g("aws_backend", "overhead_ms_per_task")),
            _ms_to_us(g("aws_backend", "mapped_overhead_ms_per_task")),
        ],
        "Time per task (10,000 tasks; local: overhead only)",
        "µs per task (log scale)",
    )
    axes[0][0].set_yscale("log")
    bars(
        axes[0][1],
        ["p50", "p95", "p99"],
        [g("pickup", f"pickup_{p}_seconds") for p in ("p50", "p95", "p99")],
        f"Pickup latency, scheduled → Running ({g('pickup', 'runs')} runs)",
        "seconds",
        target=2.0,
    )
    rates = g("throughput", "runs_per_second") or {}
    bars(
        axes[0][2],
        [f"{p} poller(s)" for p in rates],
        list(rates.values()),
        "Throughput (trivial flow runs due at once)",
        "flow runs / s",
    )
    handlers = g("cold_start", "handlers") or {}
    bars(
        axes[1][0],
        list(handlers),
        [h["import_ms_median"] for h in handlers.values()],
        "Lambda handler import (median, fresh process)",
        "ms",
        target=300,
    )
    bars(
        axes[1][1],
        ["2,000 deployments\nall due", "10,000 deployments\n2% due"],
        [g("scheduler", "tick_seconds"), g("scheduler_10000", "tick_seconds")],
        "Scheduler tick (emulator; the tick runs every minute)",
        "seconds per tick",
        target=60,
    )
    breakdown = g("cost", "breakdown_usd_per_million_task_runs") or {}
    groups: dict[str, float] = {}
    for line, usd in breakdown.items():
        key = "events (DynamoDB)" if "events" in line else line.split(": ")[1].split("_")[0]
        key = {
            "lambda": "Lambda",
            "dynamodb": "DynamoDB",
            "sqs": "SQS",
            "s3": "S3",
            "cloudwatch": "Logs",
        }.get(key, key)
        groups[key] = round(groups.get(key, 0.0) + usd, 3)
    bars(
        axes[1][2],
        list(groups),
        list(groups.values()),
        f"$ per million task runs ({g('cost', 'tasks_per_flow_run')} tasks per flow run): "
        f"{g('cost', 'usd_per_million_task_runs')}",
        "US dollars",
        target=2.0,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _ms_to_us(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def main() -> int:
    only = {s for s in os.environ.get("BENCH_ONLY", "").split(",") if s} or None
    if only is None:
        RESULTS.unlink(missing_ok=True)
    started = time.monotonic()
    steps = run_steps(only)
    total = time.monotonic() - started
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": _commit(),
    }
    results["steps"] = steps
    results["total_seconds"] = round(total, 1)
    results["finished"] = datetime.now(UTC).isoformat()
    if "aws_backend" in results and "throughput" in results:
        results["cost"] = cost.cost(results)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results, total)
    if "cost" in results:
        print()
        cost.print_table(results["cost"])
    if draw(results, CHART):
        print(f"\nWrote {RESULTS.relative_to(ROOT)} and {CHART.relative_to(ROOT)}")
    return 0 if all(s["ok"] for s in steps.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
