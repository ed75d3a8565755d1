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

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("dev-home")
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
        process.send_signal(signal.SIGINT)
        output, errors = process.communicate(timeout=60)
        assert process.returncode == 0, errors[-2000:]
        assert "Stopped cleanly." in output


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
