"""`make demo`: the whole system on this machine, with no AWS account.

Starts the embedded stack (the AWS emulator, the scheduler, the stream-driven automations
and an on-prem poller), deploys examples/, runs the example deployments, and shows
their states, results and CloudWatch log lines:

- nightly-etl: a flaky extract retried, a cached transform (run twice: the second hits
  the cache), with schedules that the scheduler turns into runs;
- fan-out: a mapped task, then a reduce;
- nightly-report: fails; an automation reacts by running fan-out as a recovery job;
- word-count: an async flow gathering async tasks (one retried);
- regional-report: artifacts (a table and a markdown summary), a variable, and a token
  from a `Secret` block that the demo saves first, as an operator would.

Exits 0 only when every run ended as expected, within the time limit.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

EXAMPLES = Path(__file__).resolve().parent
console = Console()
problems: list[str] = []
TIMEOUT_SECONDS = 180


def expect(condition: bool, message: str) -> None:
    if not condition:
        problems.append(message)


def main() -> int:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("STRATOFLOW_LOG_TO_CONSOLE", "false")
    from stratoflow import runs
    from stratoflow.artifacts import Artifact
    from stratoflow.automations import create_automation
    from stratoflow.automations.loading import load_automations
    from stratoflow.blocks import Secret
    from stratoflow.cli.render import render_flow_run
    from stratoflow.deployments.deploy import deploy_flow, deploy_project
    from stratoflow.deployments.runs import run_deployment, wait_for_flow_run
    from stratoflow.dev.stack import LocalStack
    from stratoflow.entrypoints import load_flow
    from stratoflow.flow_runs import resume_flow_run

    home = Path(tempfile.mkdtemp(prefix="stratoflow-demo-"))
    started = time.monotonic()
    with console.status("Starting the embedded stack (emulator, scheduler, poller)..."):
        stack = LocalStack(home=home, tick_seconds=1.0).__enter__()
    try:
        console.print(f"[green]Embedded stack up[/] at {stack.endpoint}")
        console.print(
            f"Web UI (while the demo runs): {stack.ui_url}", highlight=False, soft_wrap=True
        )
        results = deploy_project(EXAMPLES)
        console.print(f"Deployed: {', '.join(r.deployment.name for r in results)}")
        for entrypoint, name in (
            ("async_flow.py:word_count", "word-count"),
            ("artifacts_flow.py:regional_report", "regional-report"),
            ("approval_flow.py:payout", "payout"),
        ):
            deploy_flow(load_flow(entrypoint, root=EXAMPLES), name, project_dir=EXAMPLES)
            console.print(f"Deployed: {name}")
        Secret(value="demo-token-0123456789").save("report-publish-token", overwrite=True)
        for automation in load_automations(EXAMPLES / "automations.yaml"):
            create_automation(automation)
            console.print(f"Automation: {automation.name}")

        def state_of(run: object) -> str | None:
            state = getattr(run, "state", None)
            return state.name if state else None

        def run_and_wait(name: str, **parameters: object) -> object:
            with console.status(f"Running {name}..."):
                run = run_deployment(name, parameters, timeout=0)
                return wait_for_flow_run(run.id, timeout=TIMEOUT_SECONDS, poll_interval=0.5)

        shown = []
        etl = run_and_wait("nightly-etl", rows=5)
        etl_again = run_and_wait("nightly-etl", rows=5)
        fan = run_and_wait("fan-out", items=8, weight=2)
        report = run_and_wait("nightly-report")
        words = run_and_wait("word-count")
        regional = run_and_wait("regional-report")
        with console.status("Running payout until it waits for approval..."):
            waiting = run_deployment("payout", {"amount": 1200}, timeout=0)
            deadline = time.monotonic() + TIMEOUT_SECONDS
            while state_of(runs.read_flow_run(waiting.id)) != "Suspended":
                expect(time.monotonic() < deadline, "payout never suspended for its approval")
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.3)
        console.print(
            f"payout {waiting.name} is Suspended, waiting for input; resuming it with "
            f"`strato flow-run resume {waiting.id} --input approved=true --input approver=ana`"
        )
        resume_flow_run(waiting.id, run_input={"approved": True, "approver": "ana"})
        approved = wait_for_flow_run(waiting.id, timeout=TIMEOUT_SECONDS, poll_interval=0.5)
        shown += [
            ("A durable flow: suspended for approval, resumed, slept without compute", approved),
            ("An async flow: gathered async tasks, one retried", words),
            ("Artifacts, a variable and a secret", regional),
            ("ETL: a flaky extract retried, a cached transform", etl),
            ("ETL again: the transform comes from the cache", etl_again),
            ("Fan-out: one task run per item, then a reduce", fan),
            ("A failing report (its automation reacts)", report),
        ]

        with console.status("Waiting for the automation's recovery run..."):
            recovery = None
            deadline = time.monotonic() + 60
            while recovery is None and time.monotonic() < deadline:
                recovery = next(
                    (
                        r
                        for r in runs.query_flow_runs(deployment="fan-out", limit=10)
                        if r.parameters.get("items") == 3
                    ),
                    None,
                )
                time.sleep(0.5)
            if recovery is not None:
                recovery = wait_for_flow_run(recovery.id, timeout=60, poll_interval=0.5)
        if recovery is not None:
            shown.append(("The automation's recovery run of fan-out", recovery))

        for title, run in shown:
            console.rule(title)
            render_flow_run(console, run, runs.read_task_runs(run.id), runs.read_logs(run.id))

        expect(state_of(etl) == "Completed", f"nightly-etl ended {state_of(etl)}")
        expect(runs.read_result(etl) == 120, "nightly-etl should return 120")
        cached = [t.state.name for t in runs.read_task_runs(etl_again.id) if t.state]
        expect("Cached" in cached, f"the second ETL run should hit the cache: {cached}")
        expect(state_of(fan) == "Completed", f"fan-out ended {state_of(fan)}")
        expect(runs.read_result(fan) == 280, "fan-out should return 280")
        expect(state_of(report) == "Failed", f"nightly-report ended {state_of(report)}")
        expect(recovery is not None, "the automation did not start a recovery run")
        expect(state_of(recovery) == "Completed", f"the recovery run ended {state_of(recovery)}")
        expect(state_of(approved) == "Completed", f"payout ended {state_of(approved)}")
        expect(runs.read_result(approved) == "paid 1188 (approved by ana)", "payout's result")
        prepared = [t for t in runs.read_task_runs(approved.id) if t.task_name == "prepare"]
        expect(len(prepared) == 1, "prepare should run once and be replayed after the pause")
        expect(state_of(words) == "Completed", f"word-count ended {state_of(words)}")
        expect(runs.read_result(words) == 34, "word-count should return 34")
        expect(state_of(regional) == "Completed", f"regional-report ended {state_of(regional)}")
        summary = Artifact.get("regional-summary")
        expect(
            summary is not None and summary.flow_run_id == regional.id,
            "regional-report should have published its summary artifact",
        )
        secret_logged = any("demo-token" in e.message for e in runs.read_logs(regional.id))
        expect(not secret_logged, "the secret's value must never be logged")
        logs = [e.message for e in runs.read_logs(etl.id)]
        expect(any("Extracted 5 records" in m for m in logs), "ETL log lines missing")
    finally:
        with console.status("Stopping the embedded stack..."):
            stack.__exit__(None, None, None)
    elapsed = time.monotonic() - started
    console.rule("Summary")
    if problems:
        for problem in problems:
            console.print(f"[red]✗[/] {problem}")
        return 1
    console.print(f"[green]✓ every example behaved as expected[/] ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
