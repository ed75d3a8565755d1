"""`make demo`: run the example flows locally and check that each did what it should.

Runs on the local backend (no AWS): a scheduled-style ETL with retries and caching,
a mapped fan-out, and a flow that fails and runs its on_failure hook. Prints states,
results, task runs and log lines; exits 0 only when every expectation held.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("STRATOFLOW_HOME", tempfile.mkdtemp(prefix="stratoflow-demo-"))
os.environ.setdefault("STRATOFLOW_LOG_TO_CONSOLE", "false")

from rich.console import Console

from etl import etl
from failing import nightly_report
from fanout import fan_out
from stratoflow import runs
from stratoflow.cli.render import render_flow_run
from stratoflow.states import State

console = Console()
problems: list[str] = []


def show(title: str, state: State) -> tuple[str, list[str]]:
    console.rule(title)
    run = runs.read_flow_run(state.details["flow_run_id"])
    task_runs = runs.read_task_runs(run.id)
    render_flow_run(console, run, task_runs, runs.read_logs(run.id))
    return run.id, [t.state.name if t.state else "-" for t in task_runs]


def expect(condition: bool, message: str) -> None:
    if not condition:
        problems.append(message)


state = etl(rows=5, return_state=True)
_, names = show("ETL: a flaky extract retried, a cached transform", state)
expect(state.is_completed() and state.result() == 120, "etl should complete with 120")
expect(names == ["Completed", "Completed", "Completed"], f"etl task states were {names}")

state = etl(rows=5, return_state=True)
_, names = show("ETL again: the transform is served from the cache", state)
expect(state.is_completed() and state.result() == 120, "the second etl should complete too")
expect(names[1] == "Cached", f"second etl run should hit the cache, got {names}")

state = fan_out(items=8, weight=2, return_state=True)
_, names = show("Fan-out: one task run per item, then a reduce", state)
expect(state.is_completed() and state.result() == 280, "fan_out should complete with 280")
expect(len(names) == 9, f"fan_out should have 8 mapped runs and 1 reduce, got {len(names)}")

state = nightly_report(return_state=True)
run_id, names = show("A failing flow: the reason is kept and its hook runs", state)
messages = [entry.message for entry in runs.read_logs(run_id)]
expect(state.is_failed(), "nightly_report should fail")
expect(any("on_failure hook" in m for m in messages), "the on_failure hook should have logged")

console.rule("Summary")
if problems:
    for problem in problems:
        console.print(f"[red]✗[/] {problem}")
    sys.exit(1)
console.print("[green]✓ every example behaved as expected[/]")
