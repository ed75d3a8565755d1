"""What a deployed flow run costs in reads, against moto: the poller reads each run once,
eventually consistent (its triage), claims it without reading it again and hands the
claimed run and its deployment to the run's process, which reads neither; claims and
triage stay exactly-once when the read they start from is stale (docs/workers.md,
"What a run costs")."""

from __future__ import annotations

import itertools
import signal
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _deploy_fixtures import Installation, installation  # noqa: F401 - a fixture
from typer.testing import CliRunner

from stratoflow import resources
from stratoflow.cli import app
from stratoflow.deployments.deploy import deploy_project
from stratoflow.deployments.runs import enqueue, schedule_flow_run
from stratoflow.models import FlowRun
from stratoflow.orchestration.claims import claim_flow_run
from stratoflow.states import Completed, Late, Running, StateType
from stratoflow.workers.execute import execute_flow_run
from stratoflow.workers.handoff import decode_handoff, encode_handoff
from stratoflow.workers.poller import Poller, PollerOptions
from stratoflow.workers.processes import execute_command, handoff_of, without_handoff

FLOWS = """
from stratoflow import flow


@flow
def add(x: int = 1, y: int = 1) -> int:
    return x + y
"""
CONFIG = """
deployments:
  - {name: add, entrypoint: "flows.py:add"}
"""


@dataclass
class Reads:
    """The GetItems made while `counting`, by partition key: (partition, consistent)."""

    counting: bool = True
    items: list[tuple[str, bool]] = field(default_factory=list)

    def __call__(self, params: Mapping[str, Any], **_: Any) -> None:
        if self.counting:
            key = params["Key"][resources.PARTITION_KEY]["S"]
            self.items.append((key, bool(params.get("ConsistentRead", False))))

    def of(self, prefix: str) -> list[tuple[str, bool]]:
        return [(key, consistent) for key, consistent in self.items if key.startswith(prefix)]


class ExitedProcess:
    _pids = itertools.count(5000)

    def __init__(self) -> None:
        self.pid = next(self._pids)
        self.returncode = 0

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        self.returncode = -signal.SIGTERM

    def kill(self) -> None:
        self.returncode = -signal.SIGKILL


@dataclass
class RunAtOnce:
    """Stands in for the run's process: the run goes Running then Completed, and the
    process exits 0. What it does is not counted (`reads.counting` is off meanwhile)."""

    found: Installation
    reads: Reads
    commands: list[list[str]] = field(default_factory=list)

    def __call__(self, command: list[str], env: Mapping[str, str]) -> ExitedProcess:
        self.commands.append(command)
        self.reads.counting = False
        try:
            backend = self.found.services.backend
            backend.set_flow_run_state(command[-1], Running())
            backend.set_flow_run_state(command[-1], Completed())
        finally:
            self.reads.counting = True
        return ExitedProcess()


@pytest.fixture
def found(installation: Installation, tmp_path: Path) -> Iterator[Installation]:
    root = tmp_path / "project"
    root.mkdir()
    (root / "flows.py").write_text(textwrap.dedent(FLOWS))
    (root / "stratoflow.yaml").write_text(textwrap.dedent(CONFIG))
    deploy_project(root, platform=installation.platform)
    yield installation


@pytest.fixture
def reads(found: Installation) -> Iterator[Reads]:
    counted = Reads()
    events = found.services.backend.dynamodb.meta.events  # type: ignore[attr-defined]
    events.register("provide-client-params.dynamodb.GetItem", counted)
    yield counted
    events.unregister("provide-client-params.dynamodb.GetItem", counted)


def new_run(found: Installation, *, send: bool = True) -> FlowRun:
    platform = found.platform
    run, _ = schedule_flow_run(
        platform, platform.deployments.get("add"), scheduled_time=found.clock.now()
    )
    if send:
        enqueue(platform, run)
    return run


def poller_for(found: Installation, spawn: Any) -> Poller:
    options = PollerOptions(
        pool="default", name="reads", wait_seconds=0, background=False, idle_sleep=0.1
    )
    return Poller(found.platform, options, spawn=spawn)


def test_the_poller_reads_each_run_once_eventually_consistent(
    found: Installation, reads: Reads
) -> None:
    runs = [new_run(found) for _ in range(3)]
    spawn = RunAtOnce(found, reads)
    poller = poller_for(found, spawn)
    poller.start()
    reads.items.clear()
    for _ in range(10):
        poller.step()
        if poller.idle():
            break
    assert sorted(command[-1] for command in spawn.commands) == sorted(r.id for r in runs)
    # Its triage's read, at half the read units; no read to claim it, none when its
    # process exited having reported the outcome (exit 0).
    assert sorted(reads.of("FLOWRUN#")) == sorted((f"FLOWRUN#{r.id}", False) for r in runs)
    # The deployment is read once for the runs of one receive, for their processes.
    assert reads.of("DEPLOYMENT#") == [("DEPLOYMENT#add", True)] * poller.intake.receives
    for run in runs:
        state = found.services.backend.read_flow_run(run.id).state
        assert state is not None and state.type is StateType.COMPLETED


def test_a_deployment_read_before_a_message_was_received_is_not_used_for_it(
    found: Installation, reads: Reads
) -> None:
    """A redeploy is seen by every run whose message arrives after it: a run's process is
    never handed a deployment read before its run existed."""
    spawn = RunAtOnce(found, reads)
    poller = poller_for(found, spawn)
    poller.start()
    for _ in range(2):
        reads.counting = False  # creating the run reads the deployment too
        new_run(found)
        reads.counting = True
        reads.items.clear()
        poller.step()
        assert reads.of("DEPLOYMENT#") == [("DEPLOYMENT#add", True)]
    assert len(spawn.commands) == 2


def test_the_process_reads_neither_its_run_nor_its_deployment_when_handed_them(
    found: Installation, reads: Reads
) -> None:
    run = new_run(found, send=False)
    backend = found.services.backend
    claimed = claim_flow_run(backend, run.id, worker="w")
    assert claimed is not None
    handoff = encode_handoff(claimed, found.platform.deployments.get("add"))
    assert handoff is not None
    reads.items.clear()
    state = execute_flow_run(run.id, found.platform, handoff=handoff)
    assert state.is_completed()
    assert reads.of(f"FLOWRUN#{run.id}") == []
    assert reads.of("DEPLOYMENT#") == []


@pytest.mark.parametrize("through_stdin", [False, True], ids=["option", "warm-stdin"])
def test_strato_flow_run_execute_takes_the_handoff(
    found: Installation, reads: Reads, through_stdin: bool
) -> None:
    run = new_run(found, send=False)
    claimed = claim_flow_run(found.services.backend, run.id, worker="w")
    assert claimed is not None
    handoff = encode_handoff(claimed, found.platform.deployments.get("add"))
    assert handoff is not None
    reads.items.clear()
    if through_stdin:
        result = CliRunner().invoke(
            app, ["flow-run", "execute", "-"], input=f"{run.id}\n{handoff}\n"
        )
    else:
        result = CliRunner().invoke(app, ["flow-run", "execute", "--handoff", handoff, run.id])
    assert result.exit_code == 0, result.output
    assert reads.of(f"FLOWRUN#{run.id}") == []


def test_a_handoff_of_another_run_or_garbled_is_ignored(found: Installation, reads: Reads) -> None:
    other = claim_flow_run(found.services.backend, new_run(found, send=False).id, worker="w")
    assert other is not None
    run = new_run(found, send=False)
    refs = found.services.backend.results  # type: ignore[attr-defined]
    misdirected = encode_handoff(other, None)
    assert misdirected is not None
    assert decode_handoff(misdirected, run.id, refs) is None
    assert decode_handoff("{not json", run.id, refs) is None
    reads.items.clear()
    # The process reads its run instead, and claims it as it always did.
    assert execute_flow_run(run.id, found.platform, handoff=misdirected).is_completed()
    assert reads.of(f"FLOWRUN#{run.id}")[0] == (f"FLOWRUN#{run.id}", True)


def test_a_poller_never_hands_a_run_to_a_fresh_processs_command_line() -> None:
    command = execute_command("run-1", '{"format":1}')
    assert handoff_of(command) == '{"format":1}'
    assert without_handoff(command)[-3:] == ["flow-run", "execute", "run-1"]
    assert "--handoff" not in without_handoff(command)


# Claims from a stale read


def test_a_claim_from_a_stale_read_of_a_still_scheduled_run_claims_it_once(
    found: Installation, reads: Reads
) -> None:
    backend = found.services.backend
    run = new_run(found, send=False)
    stale = backend.read_flow_run(run.id)
    backend.set_flow_run_state(run.id, Late())  # the late sweep, meanwhile
    reads.items.clear()
    claimed = claim_flow_run(backend, run.id, worker="w", read=stale)
    # One read, the backend's own after the conflict; the claim reuses it.
    assert reads.of(f"FLOWRUN#{run.id}") == [(f"FLOWRUN#{run.id}", True)]
    assert claimed is not None and claimed.state is not None
    assert claimed.state.type is StateType.PENDING
    stored = backend.read_flow_run(run.id)
    assert stored.version == claimed.version
    assert [s.name for s in stored.state_history][-2:] == ["Scheduled", "Late"]


def test_a_claim_from_a_stale_read_of_a_run_claimed_meanwhile_fails(found: Installation) -> None:
    backend = found.services.backend
    run = new_run(found, send=False)
    stale = backend.read_flow_run(run.id)
    assert claim_flow_run(backend, run.id, worker="first") is not None
    assert claim_flow_run(backend, run.id, worker="second", read=stale) is None
    state = backend.read_flow_run(run.id).state
    assert state is not None and state.details.get("worker") == "first"


def test_a_claimed_run_is_returned_as_written_without_a_read(
    found: Installation, reads: Reads
) -> None:
    backend = found.services.backend
    run = new_run(found, send=False)
    read = backend.read_flow_run(run.id)
    reads.items.clear()
    claimed = claim_flow_run(backend, run.id, worker="w", read=read)
    assert reads.items == []
    assert claimed is not None
    stored = backend.read_flow_run(run.id)
    assert (claimed.version, claimed.state) == (stored.version, stored.state)
    assert claimed.state is not None and claimed.state.is_pending()


class StillRunning(ExitedProcess):
    def __init__(self) -> None:
        super().__init__()
        self.returncode = None  # type: ignore[assignment]


def test_the_cancellation_check_of_a_running_run_is_eventually_consistent(
    found: Installation, reads: Reads
) -> None:
    run = new_run(found)
    process = StillRunning()
    poller = poller_for(found, lambda command, env: process)
    poller.start()
    poller.step()
    assert len(poller.processes) == 1
    reads.items.clear()
    found.clock.advance(poller.options.state_check_every + 1)
    poller.step()
    assert reads.of(f"FLOWRUN#{run.id}") == [(f"FLOWRUN#{run.id}", False)]
    process.returncode = 0
    poller.step()
    assert len(poller.processes) == 0


# Deleting the messages of ended runs


@dataclass
class Held:
    """Processes that run until told to exit; their runs are set Running at the start."""

    found: Installation
    processes: dict[str, StillRunning] = field(default_factory=dict)

    def __call__(self, command: list[str], env: Mapping[str, str]) -> StillRunning:
        self.found.services.backend.set_flow_run_state(command[-1], Running())
        self.processes[command[-1]] = StillRunning()
        return self.processes[command[-1]]

    def exit(self, run_id: str) -> None:
        self.found.services.backend.set_flow_run_state(run_id, Completed())
        self.processes[run_id].returncode = 0


def deletes(poller: Poller) -> list[tuple[str, int]]:
    """The delete requests the poller makes: (operation, messages)."""
    made: list[tuple[str, int]] = []

    def count(params: Mapping[str, Any], model: Any, **_: Any) -> None:
        if model.name.startswith("DeleteMessage"):
            made.append((model.name, len(params.get("Entries", [None]))))

    poller.sqs.meta.events.register("provide-client-params.sqs", count)
    return made


def in_flight(found: Installation) -> int:
    attributes = found.session.client("sqs").get_queue_attributes(
        QueueUrl=found.platform.queues.url("default", "default"),
        AttributeNames=["ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_the_messages_of_runs_that_end_together_are_deleted_in_one_request(
    found: Installation,
) -> None:
    runs = [new_run(found) for _ in range(3)]
    spawn = Held(found)
    poller = poller_for(found, spawn)
    made = deletes(poller)
    poller.start()
    while len(poller.processes) < len(runs):
        poller.step()
    for run in runs:
        spawn.exit(run.id)
    poller.supervise()
    assert made == [("DeleteMessageBatch", 3)]
    assert in_flight(found) == 0


def test_an_ended_runs_message_waits_a_moment_for_others_while_runs_run(
    found: Installation,
) -> None:
    first, second = new_run(found), new_run(found)
    spawn = Held(found)
    poller = poller_for(found, spawn)
    made = deletes(poller)
    poller.start()
    while len(poller.processes) < 2:
        poller.step()
    spawn.exit(first.id)
    poller.supervise()
    assert made == [] and len(poller.deletions) == 1  # the other run still runs
    assert in_flight(found) == 2  # still invisible: no other worker gets it meanwhile
    found.clock.advance(poller.options.delete_within)
    poller.supervise()
    assert made == [("DeleteMessageBatch", 1)]
    spawn.exit(second.id)
    poller.supervise()  # nothing left running: at once
    assert made == [("DeleteMessageBatch", 1)] * 2
    assert in_flight(found) == 0


def test_a_stopping_poller_deletes_the_messages_still_waiting(found: Installation) -> None:
    first, second = new_run(found), new_run(found)
    spawn = Held(found)
    poller = poller_for(found, spawn)
    poller.start()
    while len(poller.processes) < 2:
        poller.step()
    spawn.exit(first.id)
    poller.supervise()
    assert len(poller.deletions) == 1
    spawn.exit(second.id)
    poller.request_stop()
    poller.run()  # stops at once: the shutdown
    assert len(poller.deletions) == 0
    assert in_flight(found) == 0
