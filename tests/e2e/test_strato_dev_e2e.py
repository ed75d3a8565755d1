"""`strato dev` as a newcomer uses it: start it in one terminal, use the CLI in another."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.functional._ui import Browser

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


STOP_BOUND_SECONDS = 10.0
"""How long `strato dev` may take to stop on a loaded CI box (about 1-2 s on an idle one;
it took 15 s when the poller's 20 s long poll and the ticking runtime were stopped last)."""


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    # Not created yet: `strato dev` creates it, as it does `.stratoflow-dev` by default.
    home = tmp_path_factory.mktemp("project") / ".stratoflow-dev"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stratoflow.cli",
            "dev",
            "--deploy",
            str(EXAMPLES),
            "--no-live",
            "--tick-seconds",
            "1",
            "--home",
            str(home),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "POWERTOOLS_LOG_LEVEL": "WARNING"},
        start_new_session=True,  # its own process group, as in a terminal of its own
    )
    env: dict[str, str] = {}
    assert process.stdout is not None
    deadline = time.monotonic() + 90
    for line in process.stdout:
        found = re.match(r"\s*export (\w+)=(.*)", line)
        if found:
            env[found.group(1)] = found.group(2)
        if line.startswith("Ready."):
            break
        if time.monotonic() > deadline:
            break
    assert "STRATOFLOW_ENDPOINT_URL" in env, "strato dev did not print its environment"
    try:
        yield {**os.environ, **env, "STRATOFLOW_LOG_TO_CONSOLE": "false"}
    finally:
        # Ctrl-C in its terminal: SIGINT to the whole foreground process group.
        os.killpg(process.pid, signal.SIGINT)
        started = time.monotonic()
        output, errors = process.communicate(timeout=60)
        elapsed = time.monotonic() - started
        assert process.returncode == 0, errors[-2000:]
        assert output.rstrip().endswith("Stopping...\nStopped cleanly."), output[-2000:]
        assert elapsed < STOP_BOUND_SECONDS


def strato(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stratoflow.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def test_its_home_is_created_git_ignored(dev: dict[str, str]):
    home = Path(dev["STRATOFLOW_HOME"])
    assert home.name == ".stratoflow-dev"
    ignored = (home / ".gitignore").read_text().splitlines()
    assert ignored[-1] == "*"  # git, and ruff with it, skip the bundle copies and results
    assert (home / "poller.log").is_file()  # the poller's stderr, not an unread pipe


def test_deployments_are_listed(dev: dict[str, str]):
    listed = strato(dev, "deployment", "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    names = {d["name"] for d in json.loads(listed.stdout)}
    assert names == {"nightly-etl", "fan-out", "nightly-report"}


def test_run_watch_then_inspect_logs_and_task_runs(dev: dict[str, str]):
    ran = strato(
        dev,
        "deployment",
        "run",
        "fan-out",
        "--param",
        "items=4",
        "--watch",
        "--timeout",
        "90",
        "--json",
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    run = json.loads(ran.stdout)
    assert run["state"]["name"] == "Completed"

    inspected = json.loads(strato(dev, "flow-run", "inspect", run["id"], "--json").stdout)
    assert inspected["result"] == 2 * (0 + 1 + 4 + 9)
    assert [t["name"] for t in inspected["task_runs"]][-1] == "total-0"

    logs = strato(dev, "flow-run", "logs", run["id"])
    assert logs.returncode == 0
    assert "Finished in state Completed()" in logs.stdout

    tasks = json.loads(strato(dev, "task-run", "ls", run["id"], "--json").stdout)
    assert len(tasks) == 5

    listed = json.loads(strato(dev, "flow-run", "ls", "--deployment", "fan-out", "--json").stdout)
    assert run["id"] in {r["id"] for r in listed}


def test_a_failed_run_exits_1_and_shows_up_as_failed(dev: dict[str, str]):
    ran = strato(dev, "deployment", "run", "nightly-report", "--watch", "--timeout", "90")
    assert ran.returncode == 1
    assert "Failed" in ran.stdout
    failed = json.loads(strato(dev, "flow-run", "ls", "--state", "failed", "--json").stdout)
    assert any(r["deployment"] == "nightly-report" for r in failed)


def test_workers_and_pools(dev: dict[str, str]):
    workers = json.loads(strato(dev, "worker", "ls", "--json").stdout)
    assert any(w["name"] == "dev-poller" and w["alive"] for w in workers)
    pools = json.loads(strato(dev, "work-pool", "ls", "--json").stdout)
    assert pools[0]["name"] == "default"
    paused = strato(dev, "work-queue", "pause", "default")
    assert paused.returncode == 0 and "paused" in paused.stdout
    resumed = strato(dev, "work-queue", "resume", "default")
    assert resumed.returncode == 0


def test_concurrency_limits_and_events(dev: dict[str, str]):
    created = strato(dev, "concurrency-limit", "create", "tag:db", "2")
    assert created.returncode == 0, created.stderr
    limits = json.loads(strato(dev, "concurrency-limit", "ls", "--json").stdout)
    assert {"name": "tag:db", "limit": 2} in [{k: x[k] for k in ("name", "limit")} for x in limits]
    assert strato(dev, "concurrency-limit", "delete", "tag:db").returncode == 0
    events = strato(
        dev, "events", "ls", "--since", "10m", "--name", "stratoflow.flow-run.", "--json"
    )
    assert events.returncode == 0
    assert any(e["event"] == "stratoflow.flow-run.Completed" for e in json.loads(events.stdout))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("deployment", "run", "fan-outt"),
            "No deployment named 'fan-outt'. Did you mean 'fan-out'?",
        ),
        (("deployment", "run", "fan-out", "--param", "nope=1"), "unknown parameter(s) nope"),
        (
            ("deployment", "run", "fan-out", "--param", "items=abc"),
            "Deployment 'fan-out': parameter items: 'abc' is not of type 'integer'. Give each",
        ),
        (("flow-run", "inspect", "not-a-run"), "No flow run with id 'not-a-run'"),
        (("work-queue", "pause", "nope"), "has no queue 'nope'"),
        (("concurrency-limit", "inspect", "nope"), "nope"),
        (("flow-run", "ls", "--since", "yesterday"), "--since 'yesterday' is neither"),
    ],
)
def test_bad_input_is_one_line_with_exit_2(
    dev: dict[str, str], args: tuple[str, ...], message: str
):
    done = strato(dev, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_sigterm_stops_it_promptly_and_no_tick_is_printed_after_stopping(tmp_path: Path):
    """Ticks are printed (the scheduler's INFO lines) every 0.5 s while a poller long-polls
    and may run a flow; SIGTERM must stop all of it in order, quickly."""
    env = {k: v for k, v in os.environ.items() if k != "POWERTOOLS_LOG_LEVEL"}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "stratoflow.cli", "dev", "--deploy", str(EXAMPLES)),
            *("--no-live", "--tick-seconds", "0.5", "--home", str(tmp_path / ".stratoflow-dev")),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 90
        ticks_after_ready = 0
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if any(x.startswith("Ready.") for x in lines) and '"Scheduler tick"' in line:
                ticks_after_ready += 1
            if ticks_after_ready >= 2 or time.monotonic() > deadline:
                break
        assert ticks_after_ready >= 2, "\n".join(lines[-20:])

        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        rest, errors = process.communicate(timeout=60)
        elapsed = time.monotonic() - started
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    assert process.returncode == 0, errors[-2000:]
    assert elapsed < STOP_BOUND_SECONDS
    after = rest.splitlines()
    stopping = after.index("Stopping...")
    assert after[stopping + 1 :] == ["Stopped cleanly."], rest[-3000:]


def test_the_web_ui_is_served_behind_its_login_link(dev: dict[str, str]):
    link = urlsplit(dev["STRATOFLOW_UI_URL"])
    assert link.hostname == "127.0.0.1" and link.path == "/login"
    browser = Browser(f"{link.scheme}://{link.netloc}")
    assert browser.get("/flow-runs").status == 401  # no session yet
    signed_in = browser.get(f"{link.path}?{link.query}")
    assert signed_in.status == 303
    assert "Secure" not in signed_in.cookies[0]  # plain http on loopback
    page = browser.get("/flow-runs")
    assert page.status == 200 and 'data-role="operator"' in page.text
    assert browser.get("/").status == 200
