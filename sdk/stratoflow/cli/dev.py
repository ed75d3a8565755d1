"""`strato dev`: the whole system on this machine, no AWS account needed."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.live import Live
from rich.table import Table

from stratoflow.cli.common import one_line_errors, out
from stratoflow.cli.render import styled_state
from stratoflow.dev import DEV_HOME

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Ctrl-C, `kill`, and the terminal closing: each stops the stack in order."""


def dev(
    deploy: Annotated[
        Path | None, typer.Option(help="Deploy this project (a directory with stratoflow.yaml).")
    ] = None,
    home: Annotated[
        Path, typer.Option(help="Where results, caches and bundles go (git-ignored).")
    ] = Path(DEV_HOME),
    tick_seconds: Annotated[float, typer.Option(min=0.5, help="Scheduler tick period.")] = 5.0,
    poller: Annotated[bool, typer.Option(help="Start one on-prem poller.")] = True,
    live: Annotated[bool, typer.Option(help="Show a live view of runs.")] = True,
    ui: Annotated[bool, typer.Option(help="Serve the web UI on 127.0.0.1.")] = True,
    ui_port: Annotated[
        int, typer.Option(min=0, max=65535, help="The web UI's port (0: a free one).")
    ] = 0,
) -> None:
    """Start the emulator, provision it, run the scheduler, stream and Lambda worker
    locally, start a poller, and show runs until Ctrl-C (or SIGTERM)."""
    from stratoflow.dev.stack import LocalStack

    def stop(signum: int, frame: FrameType | None) -> None:
        # Once: a second Ctrl-C must not cut the ordered shutdown (bounded) short.
        for stop_signal in _STOP_SIGNALS:
            signal.signal(stop_signal, signal.SIG_IGN)
        raise KeyboardInterrupt

    for stop_signal in _STOP_SIGNALS:
        signal.signal(stop_signal, stop)
    home = home.resolve()
    with (
        one_line_errors(),
        LocalStack(
            home=home, tick_seconds=tick_seconds, poller=poller, ui=ui, ui_port=ui_port
        ) as stack,
    ):
        out.print("[bold green]stratoflow dev stack is up.[/] In another terminal:")
        for key, value in stack.environment().items():
            out.print(f"  export {key}={value}", highlight=False, soft_wrap=True)
        if stack.ui_url:
            out.print(f"Web UI: open {stack.ui_url}", highlight=False, soft_wrap=True)
        if deploy is not None:
            from stratoflow.deployments.deploy import deploy_project

            results = deploy_project(deploy)
            out.print(f"Deployed {', '.join(r.deployment.name for r in results)} from {deploy}")
        out.print("Ready. Press Ctrl-C to stop.")
        out.file.flush()  # a parent process reads these lines before we block
        try:
            if live:
                _live_view()
            else:
                while True:
                    time.sleep(1)
        except KeyboardInterrupt:
            stack.stop_runtime()  # no scheduler tick is printed after the next line
            out.print("Stopping...")
            out.file.flush()
    out.print("Stopped cleanly.")


def _live_view() -> None:
    from stratoflow.runs import query_flow_runs

    with Live(Table(), refresh_per_second=2, console=out) as view:
        while True:
            table = Table(title="Recent flow runs (Ctrl-C to stop)")
            for column in ("name", "deployment", "state", "created"):
                table.add_column(column)
            for run in query_flow_runs(limit=15):
                table.add_row(
                    run.name,
                    run.deployment_name or "-",
                    styled_state(run.state),
                    f"{run.created:%H:%M:%S}" if run.created else "-",
                )
            view.update(table)
            time.sleep(1)
