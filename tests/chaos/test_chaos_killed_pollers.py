"""SIGKILL pollers at random points while scheduled runs execute, and restart them.

The runs come from a schedule (one slot a second, created by the scheduler tick the test
drives every second, which also runs the crash sweeps). Three kinds of kill, chosen at
random (seeded):

- `poller`: the poller process only; its flow run processes carry on without it;
- `machine`: the poller and every process it started (flow runs, warm spares), as when
  the machine dies: the runs stop beating and the sweep crashes and retries them;
- `run`: one flow run process in the middle of its user code, under a live poller,
  which sees the SIGKILL exit code and crashes the run (retried: it has retries left).

Every run must end Completed with its result, and its user code must have started no
more often than its recorded attempts, never twice for one attempt.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from stratoflow import runs as run_api
from stratoflow.crashes import crash_state
from stratoflow.deployments.deploy import deploy_flow
from stratoflow.deployments.runs import run_deployment
from stratoflow.dev.event_sources import LambdaWorkerSource
from stratoflow.dev.lambda_runtime import invoke
from stratoflow.entrypoints import load_flow
from stratoflow.models import FlowRun
from stratoflow.orchestration.claims import claim_flow_run
from stratoflow.scheduler import LATE_AFTER, Scheduler
from stratoflow.states import AwaitingRetry, Running
from stratoflow.sweeps import RETRY_GRACE
from tests.chaos._chaos import (
    SCALE,
    Pollers,
    Stack,
    Ticker,
    alive,
    audit,
    descendant_pids,
    record_figures,
    settle,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300 if SCALE.name == "default" else 1800)]

DEPLOYMENT = "kills"
KINDS = ("poller", "machine", "run")
USER_CODE_SECONDS = 2.0
IN_USER_CODE = 1.2


def in_user_code(stack: Stack, pollers: Pollers) -> dict[str, list[int]]:
    """Flow run processes inside their user code now, by poller name: their run's ledger
    line was written less than IN_USER_CODE seconds ago (the flow then sleeps for
    USER_CODE_SECONDS)."""
    children = {
        pid: poller.name for poller in pollers.live for pid in descendant_pids(poller.process.pid)
    }
    recent = filesystem_now(stack.ledger.parent) - IN_USER_CODE
    found: dict[str, list[int]] = {}
    for path in stack.ledger.iterdir():
        if path.stat().st_mtime < recent:
            continue
        lines = path.read_text().splitlines()
        pid = int(lines[-1].split()[2]) if lines else 0
        if pid in children and alive(pid):
            found.setdefault(children[pid], []).append(pid)
    return found


def filesystem_now(directory: Path) -> float:
    """Now, as the kernel stamps a file's mtime. Not `time.time()`: under a moved clock
    (tests/timeshift.py) this process's time moves and file times do not."""
    probe = directory / ".clock-probe"
    probe.touch()
    return probe.stat().st_mtime


def describe(stack: Stack, run: FlowRun) -> str:
    states = [*run.state_history, *([run.state] if run.state else [])]
    history = " -> ".join(f"{s.name}({s.message or ''})@{s.timestamp:%H:%M:%S.%f}" for s in states)
    return (
        f"flow run {run.id}: run_count {run.run_count}, retries {run.retries}, "
        f"executions {stack.executions(run.id)}: {history}"
    )


def wait_for_user_code(stack: Stack, pollers: Pollers, timeout: float) -> dict[str, list[int]]:
    deadline = time.monotonic() + timeout
    while not (found := in_user_code(stack, pollers)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def test_killed_pollers_lose_no_run_and_run_no_attempt_twice(stack: Stack) -> None:
    rng = random.Random(SCALE.seed)
    platform = stack.platform
    began = time.monotonic()
    start = platform.services.clock.now().replace(microsecond=0) - timedelta(seconds=2)
    rrule = f"DTSTART:{start:%Y%m%dT%H%M%SZ} RRULE:FREQ=SECONDLY;COUNT={SCALE.runs}"
    deploy_flow(
        load_flow(f"{stack.project / 'flows.py'}:steady"),
        DEPLOYMENT,
        project_dir=stack.project,
        work_pool="kills",
        parameters={"ledger": str(stack.ledger), "seconds": USER_CODE_SECONDS},
        schedules=[{"rrule": rrule, "slug": "burst"}],
    )
    pollers = Pollers(stack, "kills")
    kills: Counter[str] = Counter()
    processes_killed = 0
    interrupted = 0
    """Runs killed inside their user code: each must show a Crashed attempt."""
    try:
        for _ in range(SCALE.pollers):
            pollers.start()
        with Ticker(platform) as ticker:
            # Kills land while the slots come due (one a second). A `run` or `machine`
            # kill waits (a few seconds at most) for a run to be inside its user code.
            kill_times = sorted(rng.uniform(3, max(6, SCALE.runs - 3)) for _ in range(SCALE.kills))
            kinds = [KINDS[i % len(KINDS)] for i in range(SCALE.kills)]
            rng.shuffle(kinds)
            t0 = time.monotonic()
            for at, kind in zip(kill_times, kinds, strict=True):
                time.sleep(max(0.0, t0 + at - time.monotonic()))
                pollers.check_alive()
                busy = wait_for_user_code(stack, pollers, 5.0) if kind != "poller" else {}
                if kind == "run" and busy:
                    pid = rng.choice(sorted(p for pids in busy.values() for p in pids))
                    os.kill(pid, signal.SIGKILL)  # its poller sees the exit code
                    kills[kind] += 1
                    processes_killed += 1
                    interrupted += 1
                    continue
                if kind == "run":
                    kind = "machine"  # nothing inside its user code: a machine dies instead
                candidates = [p for p in pollers.live if p.name in busy] or pollers.live
                victim = rng.choice(candidates)
                if kind == "machine":
                    interrupted += len(busy.get(victim.name, []))
                processes_killed += pollers.kill(victim, with_runs=kind == "machine")
                kills[kind] += 1
                time.sleep(rng.uniform(0.2, 2.0))
                pollers.start()
            runs = settle(
                lambda: stack.runs_of(DEPLOYMENT),
                expected=SCALE.runs,
                timeout=150 if SCALE.name == "default" else 1200,
                what="scheduled runs",
            )
        pollers.check_alive()
        pollers.stop()
    except BaseException:
        print(pollers.logs())
        raise
    finally:
        pollers.close()

    # No run lost: one run per slot of the schedule.
    keys = {run.idempotency_key for run in runs}
    assert len(keys) == SCALE.runs
    assert all(key is not None and key.startswith("burst|") for key in keys)
    # Every run final, its user code run no more often than its attempts.
    report = audit(stack, runs)
    unfinished = [describe(stack, run) for run in runs if run.state_name != "Completed"]
    assert unfinished == [], "\n".join(unfinished) + "\n" + pollers.logs()
    for run in runs:
        assert run_api.read_result(run) == f"{run.id}:49"
        assert stack.executions(run.id), f"flow run {run.id} completed without running"
    assert interrupted >= 1, "no kill landed inside a run's user code"
    assert report.crashed_attempts >= interrupted
    assert ticker.errors == []
    assert stack.dead_letters("kills") == []
    record_figures(
        "killed pollers",
        runs=SCALE.runs,
        pollers=SCALE.pollers,
        kills=sum(kills.values()),
        **{f"kills_{k}": kills[k] for k in KINDS},
        flow_processes_killed=processes_killed,
        runs_interrupted=interrupted,
        crashed_attempts=report.crashed_attempts,
        swept_crashed=ticker.totals["crashed"],
        swept_retried=ticker.totals["retried"],
        swept_rescheduled=ticker.totals["rescheduled"],
        executions=report.executions,
        attempts=report.attempts,
        ticks=ticker.ticks,
        seconds=round(time.monotonic() - began, 1),
    )


def test_a_crash_whose_finder_died_before_retrying_it_is_retried_by_the_tick(
    stack: Stack,
) -> None:
    """What a poller SIGKILLed at the worst moment leaves behind: it saw its run's process
    die, marked the run Crashed with its retry decided, and died before making the retry
    (a second write). The tick's sweep makes it; the run then completes."""
    platform = stack.platform
    backend = platform.backend
    queues = platform.queues
    url = queues.url("faults", "default")
    run = run_deployment("fault-steady", timeout=0)
    for message in queues.client.receive_message(QueueUrl=url).get("Messages", []):
        queues.client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    claimed = claim_flow_run(backend, run.id, worker="doomed")
    assert claimed is not None
    # What the run's process wrote (its first attempt started; its flow has retries), then
    # the Crashed state its poller wrote just before it died.
    claimed.run_count, claimed.retries = 1, 2
    backend.adopt_flow_run(claimed)
    backend.set_flow_run_state(run.id, Running())
    crashed = crash_state(claimed, "The flow run's process was killed by SIGKILL.")
    crashed.timestamp -= RETRY_GRACE + timedelta(seconds=2)  # it happened a while ago
    backend.set_flow_run_state(run.id, crashed)
    scheduler = Scheduler(platform)

    early = scheduler.tick(crashed.timestamp + RETRY_GRACE / 2)  # its finder's turn still
    assert (early.swept.retried, backend.read_flow_run(run.id).state_name) == (0, "Crashed")
    late = scheduler.tick()
    assert late.swept.retried == 1
    assert backend.read_flow_run(run.id).state_name == "AwaitingRetry"
    again = scheduler.tick()
    assert again.swept.retried == 0  # retried once

    source = LambdaWorkerSource(platform, invoke)

    def poll() -> list[FlowRun]:
        source.poll()
        return [backend.read_flow_run(run.id)]

    (done,) = settle(poll, expected=1, timeout=60)
    assert done.state_name == "Completed"
    assert [s.name for s in [*done.state_history, done.state] if s is not None] == [
        "Scheduled",
        "Pending",
        "Running",
        "Crashed",
        "AwaitingRetry",
        "Pending",
        "Retrying",
        "Completed",
    ]
    assert (done.run_count, [a for a, _ in stack.executions(run.id)]) == (2, [2])
    audit(stack, [done])


def test_a_retry_whose_message_was_never_sent_is_sent_by_the_tick(stack: Stack) -> None:
    """What a flow run process SIGKILLed at the worst moment leaves behind: its flow failed
    with retries left, it wrote AwaitingRetry and died before sending the retry's message
    (its poller sees a run waiting for a retry, and deletes the old message). The tick
    sends it once; the run then completes."""
    platform = stack.platform
    backend = platform.backend
    queues = platform.queues
    url = queues.url("faults", "default")
    run = run_deployment("fault-steady", timeout=0)
    for message in queues.client.receive_message(QueueUrl=url).get("Messages", []):
        queues.client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    claimed = claim_flow_run(backend, run.id, worker="doomed")
    assert claimed is not None
    claimed.run_count, claimed.retries = 1, 2
    backend.adopt_flow_run(claimed)
    backend.set_flow_run_state(run.id, Running())
    due = platform.services.clock.now() - LATE_AFTER - timedelta(seconds=1)
    backend.set_flow_run_state(
        run.id, AwaitingRetry("the first attempt failed", scheduled_time=due.isoformat())
    )
    assert stack.queue_depth("faults") == (0, 0, 0)
    scheduler = Scheduler(platform)

    scheduler.tick()
    scheduler.tick()  # sent once

    assert stack.queue_depth("faults") == (1, 0, 0)
    source = LambdaWorkerSource(platform, invoke)

    def poll() -> list[FlowRun]:
        source.poll()
        return [backend.read_flow_run(run.id)]

    (done,) = settle(poll, expected=1, timeout=60)
    assert done.state_name == "Completed"
    assert (done.run_count, [a for a, _ in stack.executions(run.id)]) == (2, [2])
    audit(stack, [done])
