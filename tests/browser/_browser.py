"""The browser tests' helpers: Chromium's path and flags, the demo's runs in an embedded
stack (as `make demo` leaves them), a page signed in through `strato dev`'s login link.
The fixtures that use them are in conftest.py."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Page, StorageState, ViewportSize

from stratoflow import runs
from stratoflow.automations.api import create_automation
from stratoflow.automations.loading import load_automations
from stratoflow.deployments.deploy import deploy_flow, deploy_project
from stratoflow.deployments.runs import run_deployment, wait_for_flow_run
from stratoflow.dev.stack import LocalStack
from stratoflow.entrypoints import load_flow
from stratoflow.models import FlowRun

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DOCS_SCREENSHOTS = ROOT / "docs" / "ui"
"""Where the screenshots docs/ui.md shows live (committed): `make screenshots` writes
them there. Otherwise the tests write theirs to a scratch directory, so that a test run
leaves the working tree as it was (run names and times differ from run to run)."""
SCREENSHOTS = (
    DOCS_SCREENSHOTS
    if os.environ.get("STRATOFLOW_UI_SCREENSHOTS") == "docs"
    else Path(tempfile.gettempdir()) / "stratoflow-ui-screenshots"
)

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium: Playwright drives it by path (`playwright install` downloads a
browser build of its own, which this project never does)."""
# Playwright adds --headless and a fresh temporary profile (--user-data-dir) per launch.
CHROMIUM_ARGS = [
    # Root in a container: no user namespaces for Chromium's sandbox.
    "--no-sandbox",
    "--disable-gpu",
    # Loopback only: nothing that calls home.
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}

RUN_SECONDS = 90.0
"""How long a run of the stack may take to reach the state a test waits for (a few
seconds on an idle machine; the poller shares 2 cores with the rest of the suite)."""

STACK_ENVIRONMENT = (
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_LOGS",
)


@dataclass(frozen=True)
class Demo:
    """The embedded stack and the runs the demo leaves: one Failed (nightly-report, whose
    automation then runs fan-out), Completed ones (nightly-etl, fan-out), one Suspended
    waiting for input (payout)."""

    stack: LocalStack
    failed: FlowRun
    completed: FlowRun
    paused: FlowRun

    @property
    def base(self) -> str:
        return self.stack.ui_url.split("/login", 1)[0]

    @property
    def login_link(self) -> str:
        return self.stack.ui_url


def wait_for_state(flow_run_id: str, name: str, timeout: float = RUN_SECONDS) -> FlowRun:
    """The run once its state is `name`; fails naming the state it is stuck in."""
    deadline = time.monotonic() + timeout
    run = runs.read_flow_run(flow_run_id)
    while run.state_name != name and time.monotonic() < deadline:
        time.sleep(0.3)
        run = runs.read_flow_run(flow_run_id)
    assert run.state_name == name, f"{run.name} is {run.state_name}, not {name}"
    return run


def fill_with_demo_runs(stack: LocalStack) -> Demo:
    """What examples/demo.py does, trimmed to the runs the pages show: the examples
    deployed (with payout and the automation), and their runs in the states above."""
    deploy_project(EXAMPLES)
    deploy_flow(load_flow("approval_flow.py:payout", root=EXAMPLES), "payout", project_dir=EXAMPLES)
    for automation in load_automations(EXAMPLES / "automations.yaml"):
        create_automation(automation)
    started = [
        run_deployment("nightly-etl", {"rows": 5}, timeout=0),
        run_deployment("fan-out", timeout=0),
        run_deployment("nightly-report", timeout=0),
    ]
    waiting = run_deployment("payout", {"amount": 1200}, timeout=0)
    etl, fan_out, report = (
        wait_for_flow_run(run.id, timeout=RUN_SECONDS, poll_interval=0.3) for run in started
    )
    assert report.state_name == "Failed", report.state
    assert etl.state_name == "Completed", etl.state
    assert fan_out.state_name == "Completed", fan_out.state
    paused = wait_for_state(waiting.id, "Suspended")
    assert stack.platform is not None
    stack.platform.backend.flush()  # the logs the pages read
    return Demo(stack=stack, failed=report, completed=etl, paused=paused)


def sign_in(chromium: Browser, demo: Demo) -> StorageState:
    """Sign in through the login link `strato dev` prints (an operator session): the
    cookies, for the pages of the tests (each its own context, signed in with them)."""
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(demo.login_link)
        assert page.url == f"{demo.base}/", page.url  # the login link lands on the dashboard
        assert page.locator("#current-user").get_attribute("data-role") == "operator"
        return context.storage_state()
    finally:
        context.close()


def open_page(chromium: Browser, signed_in: StorageState, viewport: ViewportSize) -> Iterator[Page]:
    """A blank page of a new context with the session's cookies; fails the test on any
    script error a page reports (a Content-Security-Policy violation included)."""
    context = chromium.new_context(viewport=viewport, storage_state=signed_in)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: _console_error(msg, errors))
    try:
        yield page
        assert not errors, errors
    finally:
        context.close()


def _console_error(message: ConsoleMessage, errors: list[str]) -> None:
    # Chromium asks every site for /favicon.ico (the UI has none: a 404, harmless).
    if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
        errors.append(f"{message.text} ({message.location.get('url')})")
