"""Shared machinery of the chaos suite: the scale, the deployed project and its ledger,
poller processes to kill, a scheduler ticking in the background, an AWS fault injector,
and the checks every test ends with.

The project's flows record every start of their user code in a ledger: one line per
execution, appended (a single `write`, atomic) to `<ledger>/<flow run id>`, with the
attempt (`flow_run.run_count`) and the process id. A run's ledger is what its user code
actually did, whatever the workers and the state table say.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.awsrequest import AWSResponse

from stratoflow.models import FlowRun
from stratoflow.platform import Platform
from stratoflow.scheduler import Scheduler
from stratoflow.states import StateType

HERE = Path(__file__).resolve().parent
POLLER_SCRIPT = HERE / "_poller.py"


# Scale


@dataclass(frozen=True)
class Scale:
    name: str
    runs: int
    """Scheduled runs executed while pollers are killed."""
    pollers: int
    kills: int
    duplicate_runs: int
    copies: int
    """How many times each work message is sent."""
    scheduler_rounds: int
    schedulers: int
    fault_runs: int
    fault_rate: float
    """Fraction of DynamoDB, SQS and S3 attempts answered with an injected error."""
    malformed_runs: int
    transition_examples: int
    claim_examples: int
    emulator_claim_examples: int
    seed: int = 20261121


SCALES = {
    "default": Scale(
        name="default",
        runs=30,
        pollers=2,
        kills=4,
        duplicate_runs=12,
        copies=2,
        scheduler_rounds=3,
        schedulers=2,
        fault_runs=12,
        fault_rate=0.2,
        malformed_runs=4,
        transition_examples=300,
        claim_examples=150,
        emulator_claim_examples=6,
    ),
    "full": Scale(
        name="full",
        runs=200,
        pollers=3,
        kills=20,
        duplicate_runs=100,
        copies=2,
        scheduler_rounds=20,
        schedulers=3,
        fault_runs=60,
        fault_rate=0.25,
        malformed_runs=20,
        transition_examples=3000,
        claim_examples=1000,
        emulator_claim_examples=40,
    ),
}


def current_scale() -> Scale:
    name = os.environ.get("CHAOS_SCALE", "default").strip().lower() or "default"
    if name not in SCALES:
        raise ValueError(f"CHAOS_SCALE must be one of {', '.join(SCALES)}, got {name!r}")
    scale = SCALES[name]
    seed = os.environ.get("CHAOS_SEED")
    if seed:
        scale = Scale(**{**scale.__dict__, "seed": int(seed)})
    return scale


SCALE = current_scale()


# Figures: what each test did, printed at the end of the session (and written to
# $CHAOS_FIGURES as JSON when set).

FIGURES: dict[str, dict[str, Any]] = {}


def record_figures(test: str, **values: Any) -> None:
    FIGURES.setdefault(test, {}).update(values)


def write_figures() -> None:
    target = os.environ.get("CHAOS_FIGURES")
    if target and FIGURES:
        Path(target).write_text(json.dumps({"scale": SCALE.name, "tests": FIGURES}, indent=2))


# The thresholds the sweeps use, lowered so that a crash is found in seconds.

SWEEP_ENV = {
    "STRATOFLOW_HEARTBEAT_SECONDS": "1",
    "STRATOFLOW_ZOMBIE_AFTER_SECONDS": "8",
    "STRATOFLOW_PENDING_TIMEOUT_SECONDS": "15",
    "STRATOFLOW_CANCELLING_GRACE_SECONDS": "10",
    "STRATOFLOW_WORKER_SHUTDOWN_GRACE_SECONDS": "2",
}


# The project every test deploys from

POOLS = ("kills", "dups", "misbehave", "malformed", "faults", "ticks", "durable")

FLOWS = '''
"""The chaos suite's flows. Each execution of user code appends one line to the run's
ledger file: the run id, the attempt (run_count) and the process id."""

import os
import signal
import time

import stratoflow
from stratoflow import flow, task
from stratoflow.runtime import flow_run


def record(ledger: str) -> int:
    attempt = flow_run.run_count
    line = f"{flow_run.id} {attempt} {os.getpid()}\\n".encode()
    path = os.path.join(ledger, flow_run.id)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return attempt


@task
def square(x: int) -> int:
    return x * x


@flow(retries=50, retry_delay_seconds=0)
def steady(ledger: str, seconds: float = 1.0, x: int = 7) -> str:
    record(ledger)
    time.sleep(seconds)
    return f"{flow_run.id}:{square(x)}"


@flow(retries=1, retry_delay_seconds=0)
def flaky(ledger: str, x: int = 3, size: int = 0) -> str:
    """Fails its first attempt (the retry goes back through the queue); `size` pads the
    result so that it is stored in S3 rather than in the run's item."""
    if record(ledger) < 2:
        raise RuntimeError("the first attempt fails")
    futures = square.map([x, x + 1])
    return f"{flow_run.id}:{sum(f.result() for f in futures)}:" + "r" * size


@flow(retries=1, retry_delay_seconds=0)
def exits_once(ledger: str) -> str:
    if record(ledger) < 2:
        os._exit(3)
    return "second attempt"


@flow(retries=1, retry_delay_seconds=0)
def exits_always(ledger: str) -> str:
    record(ledger)
    os._exit(3)


@flow(retries=1, retry_delay_seconds=0)
def killed_once(ledger: str) -> str:
    if record(ledger) < 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return "second attempt"


@flow
def killed_always(ledger: str) -> str:
    record(ledger)
    os.kill(os.getpid(), signal.SIGKILL)
    return "unreachable"


@flow(timeout_seconds=1)
def overdue(ledger: str) -> str:
    record(ledger)
    for _ in range(300):
        time.sleep(0.1)
    return "too late"


@flow(retries=2, retry_delay_seconds=0)
def failing(ledger: str) -> str:
    record(ledger)
    raise ValueError("the ledger does not balance")


def record_task(ledger: str, index: int) -> None:
    """One line per execution of a durable flow's task: index, attempt, pid."""
    line = f"{index} {flow_run.run_count} {os.getpid()}\\n".encode()
    path = os.path.join(ledger, flow_run.id + ".tasks")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@task
def durable_step(ledger: str, index: int, seconds: float) -> int:
    record_task(ledger, index)
    time.sleep(seconds)
    return index * index


@flow(retries=50, retry_delay_seconds=0)
def durable_steps(ledger: str, steps: int = 6, seconds: float = 0.4) -> int:
    """Tasks one after the other, a durable sleep half-way: killed at any point, a run
    replays the tasks it completed and never runs one of those again."""
    total = 0
    for index in range(steps):
        if index == steps // 2:
            stratoflow.sleep(1)
        total += durable_step(ledger, index, seconds)
    return total
'''

BROKEN = '''
"""Imports fine where it is deployed; raises where the worker imports it."""

import os

if os.environ.get("CHAOS_IMPORT_BROKEN"):
    raise RuntimeError("cannot reach the feature store")

from stratoflow import flow


@flow
def broken(ledger: str) -> str:
    return "never"
'''

CONFIG = """
work_pools:
  kills: {{}}
  dups: {{}}
  misbehave: {{}}
  malformed: {{}}
  faults: {{type: lambda}}
  ticks: {{}}
  durable: {{}}

deployments:
  - {{name: durable-steps, entrypoint: "flows.py:durable_steps", work_pool: durable,
      parameters: {{ledger: "{ledger}"}}}}
  - {{name: dup-steady, entrypoint: "flows.py:steady", work_pool: dups,
      parameters: {{ledger: "{ledger}", seconds: 0.2}}}}
  - {{name: bad-input-steady, entrypoint: "flows.py:steady", work_pool: malformed,
      parameters: {{ledger: "{ledger}", seconds: 0.2}}}}
  - {{name: fault-flaky, entrypoint: "flows.py:flaky", work_pool: faults,
      parameters: {{ledger: "{ledger}", size: 6000}}}}
  - {{name: fault-steady, entrypoint: "flows.py:steady", work_pool: faults,
      parameters: {{ledger: "{ledger}", seconds: 0}}}}
  - {{name: mis-broken, entrypoint: "broken.py:broken", work_pool: misbehave,
      parameters: {{ledger: "{ledger}"}}}}
  - {{name: mis-exits-once, entrypoint: "flows.py:exits_once", work_pool: misbehave,
      parameters: {{ledger: "{ledger}"}}}}
  - {{name: mis-exits-always, entrypoint: "flows.py:exits_always", work_pool: misbehave,
      parameters: {{ledger: "{ledger}"}}}}
  - {{name: mis-killed-once, entrypoint: "flows.py:killed_once", work_pool: misbehave,
      parameters: {{ledger: "{ledger}"}}}}
  - {{name: mis-killed-always, entrypoint: "flows.py:killed_always", work_pool: misbehave,
      parameters: {{ledger: "{ledger}"}}}}
  - {{name: mis-overdue, entrypoint: "flows.py:overdue", work_pool: misbehave,
      parameters: {{ledger: "{ledger}"}}}}
  - {{name: mis-failing, entrypoint: "flows.py:failing", work_pool: misbehave,
      parameters: {{ledger: "{ledger}"}}}}
  - {{name: mis-bad-parameters, entrypoint: "flows.py:steady", work_pool: misbehave,
      parameters: {{ledger: "{ledger}", seconds: 0}}}}
"""


def write_project(root: Path, ledger: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "flows.py").write_text(textwrap.dedent(FLOWS).lstrip())
    (root / "broken.py").write_text(textwrap.dedent(BROKEN).lstrip())
    (root / "stratoflow.yaml").write_text(CONFIG.format(ledger=ledger).lstrip())
    return root


@dataclass
class Stack:
    """The emulator, the deployed project, its ledger and the environment of every
    process of the installation (pollers, flow runs)."""

    endpoint: str
    env: dict[str, str]
    home: Path
    project: Path
    ledger: Path
    logs: Path
    platform: Platform

    def executions(self, run_id: str) -> list[tuple[int, int]]:
        """(attempt, pid) of each start of the run's user code, in order."""
        path = self.ledger / run_id
        if not path.exists():
            return []
        found = []
        for line in path.read_text().splitlines():
            recorded_id, attempt, pid = line.split()
            assert recorded_id == run_id
            found.append((int(attempt), int(pid)))
        return found

    def runs_of(self, deployment: str) -> list[FlowRun]:
        return self.platform.backend.list_flow_runs_of_deployment(deployment)

    def queue_depth(self, pool: str, *, dead: bool = False) -> tuple[int, int, int]:
        """Visible, in flight and delayed messages of the pool's default queue (or DLQ)."""
        queues = self.platform.queues
        url = queues.dead_letter_url(pool, "default") if dead else queues.url(pool, "default")
        attributes = queues.client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
            "Attributes"
        ]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
            int(attributes["ApproximateNumberOfMessagesDelayed"]),
        )

    def dead_letters(self, pool: str) -> list[dict[str, Any]]:
        queues = self.platform.queues
        url = queues.dead_letter_url(pool, "default")
        found: list[dict[str, Any]] = []
        while True:
            batch = queues.client.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                VisibilityTimeout=600,
            ).get("Messages", [])
            if not batch:
                return found
            found.extend(dict(m) for m in batch)


# Waiting for runs


def is_final(run: FlowRun) -> bool:
    return run.state is not None and run.state.is_final()


def settle(
    read: Callable[[], list[FlowRun]],
    *,
    expected: int,
    timeout: float,
    stable_for: float = 2.0,
    what: str = "runs",
) -> list[FlowRun]:
    """Wait until there are `expected` runs, all final, and nothing changed for
    `stable_for` seconds (a crashed run with retries left is final for a moment before
    the sweep moves it on to AwaitingRetry)."""
    deadline = time.monotonic() + timeout
    stable_since: float | None = None
    seen: dict[str, int] = {}
    runs: list[FlowRun] = []
    while time.monotonic() < deadline:
        runs = read()
        versions = {r.id: r.version for r in runs}
        if len(runs) == expected and all(is_final(r) for r in runs):
            if versions == seen and stable_since is not None:
                if time.monotonic() - stable_since >= stable_for:
                    return runs
            else:
                stable_since = time.monotonic()
        else:
            stable_since = None
        seen = versions
        time.sleep(0.5)
    states = Counter(r.state_name for r in runs)
    raise AssertionError(
        f"timed out after {timeout:g} s waiting for {expected} {what} to be final: "
        f"{len(runs)} exist, states {dict(states)}"
    )


# The checks every test ends with


@dataclass
class Audit:
    runs: int = 0
    executions: int = 0
    attempts: int = 0
    crashed_attempts: int = 0
    states: Counter[str] = field(default_factory=Counter)


def audit(stack: Stack, runs: Iterable[FlowRun]) -> Audit:
    """Every run is final; its user code started no more often than its recorded
    attempts (run_count), and never twice for the same attempt."""
    report = Audit()
    for run in runs:
        report.runs += 1
        assert run.state is not None and run.state.is_final(), (run.id, run.state)
        assert run.state.type not in (StateType.RUNNING, StateType.PENDING)
        report.states[run.state_name or "?"] += 1
        executions = stack.executions(run.id)
        attempts = [attempt for attempt, _ in executions]
        assert len(executions) <= run.run_count, (
            f"flow run {run.id}: user code started {len(executions)} times "
            f"({executions}) but run_count is {run.run_count}"
        )
        assert len(set(attempts)) == len(attempts), (
            f"flow run {run.id}: an attempt's user code ran twice: {executions}"
        )
        report.executions += len(executions)
        report.attempts += run.run_count
        history = [*run.state_history, run.state]
        report.crashed_attempts += sum(1 for s in history if s.type is StateType.CRASHED)
    return report


# Poller processes


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process (from /proc)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        found[int(entry)] = (int(fields[1]), fields[0])
    return found


def descendant_pids(pid: int) -> list[int]:
    """The live processes under process `pid`: a poller's children (its fork server, or
    its spawned flow run processes and warm spares) and theirs (the flow run processes
    the fork server forks), down to the last generation."""
    processes = _processes()
    found: list[int] = []
    parents = [pid]
    while parents:
        parent = parents.pop()
        children = [p for p, (ppid, state) in processes.items() if ppid == parent]
        found += [p for p in children if processes[p][1] != "Z"]
        parents += children
    return found


def freeze_tree(pid: int) -> list[int]:
    """SIGSTOP process `pid` and every process under it, and return them all (`pid`
    first): stopped, none of them can start another process, so the list is complete."""
    frozen = [pid]
    os.kill(pid, signal.SIGSTOP)
    while True:
        deadline = time.monotonic() + 5
        while not all(_stopped(p) for p in frozen) and time.monotonic() < deadline:
            time.sleep(0.01)  # stopped only once the signal is delivered
        new = [p for p in descendant_pids(pid) if p not in frozen]
        if not new:
            return frozen
        for child in new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGSTOP)
        frozen += new


def _stopped(pid: int) -> bool:
    """Stopped, or gone (`alive` below: no state to wait for)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("T", "t", "Z", "X")


def is_fork_server(pid: int) -> bool:
    """Process `pid` is a poller's fork server (its flow run processes, forked from it,
    share its command line, but not its parent: the poller)."""
    try:
        return b"stratoflow.workers.forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass
class PollerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


class Pollers:
    """Poller processes serving one work pool, started, killed and restarted."""

    def __init__(self, stack: Stack, pool: str, *, env: dict[str, str] | None = None) -> None:
        self.stack = stack
        self.pool = pool
        self.env = {**stack.env, **(env or {})}
        self.live: list[PollerProcess] = []
        self.dead: list[PollerProcess] = []
        self.orphans: list[int] = []
        """Flow run processes of killed pollers that were left running."""
        self._started = 0

    def start(self) -> PollerProcess:
        self._started += 1
        name = f"{self.pool}-{self._started}"
        log = self.stack.logs / f"poller-{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, str(POLLER_SCRIPT), self.pool, name],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        poller = PollerProcess(name, process, log)
        self.live.append(poller)
        return poller

    def check_alive(self) -> None:
        for poller in self.live:
            code = poller.process.poll()
            assert code is None, (
                f"poller {poller.name} exited with {code}:\n{poller.log.read_text()[-3000:]}"
            )

    def kill(self, poller: PollerProcess, *, with_runs: bool) -> int:
        """SIGKILL a poller; with `with_runs`, every process under it too (the machine
        died: its fork server and flow run processes, or its spawned ones). Returns the
        number of flow run processes killed (the fork server is not one)."""
        pid = poller.process.pid
        if with_runs:
            # Frozen first: a fork server still forking after the poller's death would
            # leave a run alive that the machine's death should have killed.
            tree = freeze_tree(pid)
            parents = _processes()
            runs = [
                p for p in tree[1:] if not (parents.get(p, (0,))[0] == pid and is_fork_server(p))
            ]
            for process in tree:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process, signal.SIGKILL)
            killed = len(runs)
        else:
            self.orphans.extend(descendant_pids(pid))
            poller.process.send_signal(signal.SIGKILL)
            killed = 0
        poller.process.wait(timeout=30)
        self.live.remove(poller)
        self.dead.append(poller)
        return killed

    def stop(self) -> None:
        """SIGTERM every live poller (they hand back what runs and exit 0)."""
        for poller in self.live:
            if poller.process.poll() is None:
                poller.process.send_signal(signal.SIGTERM)
        for poller in self.live:
            try:
                code = poller.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                poller.process.kill()
                code = poller.process.wait()
            assert code == 0, f"poller {poller.name} exited with {code}"
        self.dead.extend(self.live)
        self.live = []
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in self.orphans) and time.monotonic() < deadline:
            time.sleep(0.2)

    def close(self) -> None:
        """Whatever is still running after a failed test: kill it."""
        for poller in self.live:
            if poller.process.poll() is None:
                for pid in descendant_pids(poller.process.pid):
                    _kill_quietly(pid)
                poller.process.kill()
                poller.process.wait()
        for pid in self.orphans:
            _kill_quietly(pid)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name} ---\n{p.log.read_text()[-4000:]}" for p in [*self.dead, *self.live]
        )


def _kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


# The scheduler tick (which runs the sweeps), driven from the test


class Ticker:
    """Calls `Scheduler(platform).tick()` in a thread, `every` seconds apart."""

    def __init__(self, platform: Platform, *, every: float = 1.0) -> None:
        self.scheduler = Scheduler(platform)
        self.every = every
        self.ticks = 0
        self.totals: Counter[str] = Counter()
        self.errors: list[str] = []
        self.durations: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chaos-ticker", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.scheduler.tick()
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            else:
                self.ticks += 1
                self.durations.append(report.seconds)
                self.errors.extend(report.errors)
                self.totals.update(
                    created=report.created,
                    enqueued=report.enqueued,
                    late=report.late,
                    crashed=report.swept.crashed,
                    retried=report.swept.retried,
                    rescheduled=report.swept.rescheduled,
                    cancelled=report.swept.cancelled,
                )
            self._stop.wait(self.every)

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)


# AWS faults


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


@dataclass(frozen=True)
class Fault:
    code: str
    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()

    def response(self, url: str) -> AWSResponse:
        headers = {"Content-Type": self.content_type, **dict(self.headers)}
        return AWSResponse(url, self.status, headers, _Body(self.body))


def _json_fault(status: int, code: str, prefix: str, *, query_code: str | None = None) -> Fault:
    body = json.dumps({"__type": f"{prefix}#{code}", "message": f"injected {code}"}).encode()
    headers = (("x-amzn-query-error", f"{query_code};Sender"),) if query_code else ()
    return Fault(code, status, body, "application/x-amz-json-1.0", headers)


def _xml_fault(status: int, code: str) -> Fault:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>injected {code}</Message></Error>"
    ).encode()
    return Fault(code, status, body, "application/xml")


_DYNAMODB = "com.amazonaws.dynamodb.v20120810"
FAULTS: dict[str, tuple[Fault, ...]] = {
    "dynamodb": (
        _json_fault(400, "ThrottlingException", _DYNAMODB),
        _json_fault(400, "ProvisionedThroughputExceededException", _DYNAMODB),
        _json_fault(500, "InternalServerError", _DYNAMODB),
        _json_fault(503, "ServiceUnavailable", _DYNAMODB),
    ),
    "sqs": (
        _json_fault(400, "RequestThrottled", "com.amazonaws.sqs", query_code="RequestThrottled"),
        _json_fault(500, "InternalError", "com.amazonaws.sqs"),
        _json_fault(503, "ServiceUnavailable", "com.amazonaws.sqs"),
    ),
    "s3": (
        _xml_fault(503, "SlowDown"),
        _xml_fault(500, "InternalError"),
        _xml_fault(503, "ServiceUnavailable"),
    ),
}


class FaultInjector:
    """A botocore `before-send` hook: a seeded random fraction of the attempts of the
    DynamoDB, SQS and S3 clients are answered with a throttling or 5xx error instead of
    being sent (so the request is never applied, as when AWS throttles it).

    Each service draws from a generator of its own (seed and service), so what one service
    gets does not depend on how its calls interleave with the others' across threads; and
    each service's first attempt is a fault, so every service meets one even where it
    makes only a dozen attempts (S3), where a 20% rate alone misses all of them ~3% of
    the time."""

    def __init__(self, seed: int, rate: float) -> None:
        self.rngs = {service: random.Random(f"{seed}/{service}") for service in FAULTS}
        self.rate = rate
        self.attempts: Counter[str] = Counter()
        self.injected: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._installed: list[tuple[Any, str]] = []

    def __call__(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        service = event_name.split(".")[1]
        with self._lock:
            self.attempts[service] += 1
            rng = self.rngs[service]
            if self.attempts[service] > 1 and rng.random() >= self.rate:
                return None
            fault = rng.choice(FAULTS[service])
            self.injected[(service, fault.code)] += 1
        return fault.response(str(request.url))

    def install(self, clients: Any) -> None:
        for service in FAULTS:
            client = getattr(clients, service)
            event = f"before-send.{service}"
            client.meta.events.register(event, self)
            self._installed.append((client, event))

    def uninstall(self) -> None:
        for client, event in self._installed:
            client.meta.events.unregister(event, self)
        self._installed = []

    @property
    def total_injected(self) -> int:
        return sum(self.injected.values())


def now_floor_seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


# A scheduler in a process of its own


def scheduler_process(moments: list[str], barrier: Any, results: Any) -> None:
    """For each moment: wait until every scheduler is ready, then tick at that moment
    (the same minute as the others). Reports (pid, moment, created, existing, errors)."""
    from stratoflow.platform import get_platform

    platform = get_platform()
    scheduler = Scheduler(platform)
    try:
        for moment in moments:
            barrier.wait(timeout=120)
            report = scheduler.tick(datetime.fromisoformat(moment))
            results.put((os.getpid(), moment, report.created, report.existing, list(report.errors)))
    finally:
        platform.backend.close()
