"""Durable flow runs on the emulated installation, through `execute_flow_run` (the path
every worker kind runs): replay of completed task runs on a retry, suspension for input
and resume, durable sleep, divergence, and `retry --from-scratch` (docs/durability.md).

Each task appends its name to a file given as a parameter: the file says which task
functions really ran, across attempts (each attempt loads the flow's code afresh)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from _deploy_fixtures import Installation, deploy_files, installation  # noqa: F401
from typer.testing import CliRunner

from stratoflow.cli.app import app
from stratoflow.crashes import mark_crashed
from stratoflow.deployments.runs import retry_flow_run, schedule_flow_run
from stratoflow.durable import wait_for_event as wait_for_event_module
from stratoflow.durable.event_waits import EventWaits
from stratoflow.events.models import Event, Resource
from stratoflow.exceptions import InvalidRunInput, NotPausedError
from stratoflow.flow_runs import resume_flow_run
from stratoflow.orchestration.claims import claim_flow_run
from stratoflow.scheduler import Scheduler
from stratoflow.states import StateType
from stratoflow.sweeps import sweep
from stratoflow.workers.execute import execute_flow_run

runner = CliRunner()

FLOWS = """
    from pathlib import Path

    import stratoflow
    from stratoflow import flow, task
    from stratoflow.flow_runs import suspend_flow_run, pause_flow_run
    from stratoflow.input import RunInput


    def note(log: str, what: str) -> None:
        with open(log, "a") as f:
            f.write(what + "\\n")


    @task
    def step(log: str, name: str) -> str:
        note(log, name)
        return name.upper()


    @task
    def flaky(log: str) -> str:
        note(log, "flaky")
        marker = Path(log + ".failed-once")
        if not marker.exists():
            marker.write_text("x")
            raise RuntimeError("first time fails")
        return "ok"


    @flow(retries=1, retry_delay_seconds=0)
    def three(log: str) -> list[str]:
        a = step(log, "a")
        b = flaky(log)
        c = step(log, "c")
        return [a, b, c]


    class Approval(RunInput):
        approved: bool
        comment: str = ""


    @flow
    def approve(log: str) -> str:
        a = step(log, "a")
        answer = suspend_flow_run(wait_for_input=Approval, timeout=600)
        b = step(log, "b-" + str(answer.approved))
        return f"{a} {b} {answer.comment}"


    @task
    async def astep(log: str, name: str) -> str:
        note(log, name)
        return name.upper()


    @flow
    async def async_approve(log: str) -> str:
        a = await astep(log, "a")
        answer = suspend_flow_run(wait_for_input=Approval, timeout=600)
        stratoflow.sleep(5)
        b = await astep(log, "b-" + str(answer.approved))
        return f"{a} {b}"


    @flow(timeout_seconds=60)  # the body runs in a thread of its own: it suspends too
    def paused(log: str) -> str:
        step(log, "a")
        pause_flow_run(timeout=600)
        return step(log, "b")


    @flow
    def sleeper(log: str) -> str:
        a = step(log, "a")
        stratoflow.sleep(3600)
        return a + step(log, "b")


    @flow
    def awaits(log: str, timeout: float = 600) -> str:
        step(log, "a")
        event = stratoflow.wait_for_event(
            "shipment.arrived", resource="shipment.42", timeout=timeout
        )
        got = "none" if event is None else str(event.payload["boxes"])
        return step(log, "b-" + got)


    @flow
    def child(log: str) -> str:
        first = step(log, "child-a")
        return first + flaky(log)


    @flow(retries=2, retry_delay_seconds=0)
    def parent(log: str) -> str:
        got = child(log)
        marker = Path(log + ".parent-failed")
        if not marker.exists():
            marker.write_text("x")
            raise RuntimeError("the parent fails once after its subflow")
        return got + step(log, "after")


    @task
    def other(log: str) -> str:
        note(log, "other")
        return "other"


    @flow(retries=1, retry_delay_seconds=0)
    def shifty(log: str) -> str:
        # Calls another task first once a marker exists: the code "changed".
        if Path(log + ".shifted").exists():
            return other(log)
        step(log, "a")
        Path(log + ".shifted").write_text("x")
        raise RuntimeError("fail to force a retry")
"""

PROJECT = {
    "flows.py": FLOWS,
    "stratoflow.yaml": """
        deployments:
          - {name: three, entrypoint: "flows.py:three"}
          - {name: three-no-replay, entrypoint: "flows.py:three", replay: false}
          - {name: approve, entrypoint: "flows.py:approve"}
          - {name: paused, entrypoint: "flows.py:paused"}
          - {name: async-approve, entrypoint: "flows.py:async_approve"}
          - {name: sleeper, entrypoint: "flows.py:sleeper"}
          - {name: shifty, entrypoint: "flows.py:shifty"}
          - {name: awaits, entrypoint: "flows.py:awaits"}
          - {name: parent, entrypoint: "flows.py:parent"}
    """,
}


def _start(installation: Installation, tmp_path: Path, deployment: str) -> tuple[str, Path]:
    deploy_files(installation, tmp_path / "project", PROJECT)
    log = tmp_path / f"{deployment}.log"
    platform = installation.platform
    run, _ = schedule_flow_run(
        platform,
        platform.deployments.get(deployment),
        scheduled_time=installation.clock.now(),
        parameters={"log": str(log)},
    )
    return run.id, log


def _calls(log: Path) -> list[str]:
    return log.read_text().split()


def _read(installation: Installation, run_id: str):  # type: ignore[no-untyped-def]
    return installation.new_platform().services.backend.read_flow_run(run_id)


def test_a_retry_replays_the_task_runs_the_failed_attempt_completed(
    installation: Installation, tmp_path: Path
) -> None:
    run_id, log = _start(installation, tmp_path, "three")
    first = execute_flow_run(run_id, installation.platform, worker="w1")
    assert first.name == "AwaitingRetry"
    final = execute_flow_run(run_id, installation.platform, worker="w2")
    assert final.is_completed(), final
    assert _calls(log) == ["a", "flaky", "flaky", "c"]  # `a` ran once
    assert final.result() == ["A", "ok", "C"]
    task_runs = installation.new_platform().services.backend.list_task_runs(run_id)
    # Attempt 2 created no new run for `a`: one for each call that really ran.
    assert sorted((t.task_name, t.flow_run_attempt) for t in task_runs) == [
        ("flaky", 1),
        ("flaky", 2),
        ("step", 1),
        ("step", 2),
    ]


def test_replay_can_be_turned_off_per_deployment(
    installation: Installation, tmp_path: Path
) -> None:
    run_id, log = _start(installation, tmp_path, "three-no-replay")
    execute_flow_run(run_id, installation.platform, worker="w1")
    assert execute_flow_run(run_id, installation.platform, worker="w2").is_completed()
    assert _calls(log) == ["a", "flaky", "a", "flaky", "c"]


def test_retry_from_scratch_runs_every_task_again(
    installation: Installation, tmp_path: Path
) -> None:
    run_id, log = _start(installation, tmp_path, "three")
    execute_flow_run(run_id, installation.platform, worker="w1")
    execute_flow_run(run_id, installation.platform, worker="w1")
    retry_flow_run(run_id, platform=installation.platform)
    assert execute_flow_run(run_id, installation.platform, worker="w1").is_completed()
    assert _calls(log) == ["a", "flaky", "flaky", "c"]  # the operator's retry replayed all
    retry_flow_run(run_id, platform=installation.platform, from_scratch=True)
    assert execute_flow_run(run_id, installation.platform, worker="w1").is_completed()
    assert _calls(log)[4:] == ["a", "flaky", "c"]


def test_a_suspended_run_holds_nothing_and_resumes_with_validated_input(
    installation: Installation, tmp_path: Path
) -> None:
    run_id, log = _start(installation, tmp_path, "approve")
    sent_before = len(installation.sent)
    state = execute_flow_run(run_id, installation.platform, worker="w1")
    assert (state.type, state.name) == (StateType.PAUSED, "Suspended")
    run = _read(installation, run_id)
    assert run.state.details["pause_key"] == "pause-0"
    assert "approved" in run.state.message or "input" in run.state.message
    assert len(installation.sent) == sent_before  # nothing waits in a queue meanwhile

    with pytest.raises(InvalidRunInput, match="approved") as bad:
        resume_flow_run(run_id, run_input={"approved": "maybe"})
    assert "stays paused" in str(bad.value)
    with pytest.raises(InvalidRunInput, match="waits for input"):
        resume_flow_run(run_id)
    assert _read(installation, run_id).state.name == "Suspended"  # nothing lost

    resumed = resume_flow_run(run_id, run_input={"approved": True, "comment": "fine"})
    assert resumed.state.name == "Resuming"
    assert len(installation.sent) == sent_before + 1  # back in its work queue
    final = execute_flow_run(run_id, installation.platform, worker="w2")
    assert final.is_completed(), final
    assert final.result() == "A B-TRUE fine"
    assert _calls(log) == ["a", "b-True"]
    with pytest.raises(NotPausedError, match="not paused"):
        resume_flow_run(run_id, run_input={"approved": True})


def test_pause_in_a_deployed_run_suspends_it(installation: Installation, tmp_path: Path) -> None:
    run_id, log = _start(installation, tmp_path, "paused")
    assert execute_flow_run(run_id, installation.platform, worker="w1").name == "Suspended"
    with pytest.raises(InvalidRunInput, match="does not wait for input"):
        resume_flow_run(run_id, run_input={"x": 1})
    resume_flow_run(run_id)
    final = execute_flow_run(run_id, installation.platform, worker="w1")
    assert final.result() == "B"
    assert _calls(log) == ["a", "b"]


def test_a_durable_sleep_holds_nothing_and_wakes_once_after_its_time(
    installation: Installation, tmp_path: Path
) -> None:
    run_id, log = _start(installation, tmp_path, "sleeper")
    sent_before = len(installation.sent)
    state = execute_flow_run(run_id, installation.platform, worker="w1")
    assert (state.type, state.name) == (StateType.SCHEDULED, "Sleeping")
    wake = installation.clock.now() + timedelta(seconds=3600)
    assert _read(installation, run_id).state.details["scheduled_time"] == wake.isoformat()
    (message, delay), *_ = installation.sent_messages()[sent_before:]
    assert message.flow_run_id == run_id
    assert 890 <= delay <= 900  # SQS's longest delay (less the prefetch lead); sent on
    installation.clock.advance(3600)
    final = execute_flow_run(run_id, installation.platform, worker="w2")
    assert final.is_completed(), final
    assert final.result() == "AB"
    assert _calls(log) == ["a", "b"]
    run = _read(installation, run_id)
    assert run.continuations == 1 and run.run_count == 2


def test_a_divergent_replay_fails_the_run_clearly_without_retrying(
    installation: Installation, tmp_path: Path
) -> None:
    run_id, log = _start(installation, tmp_path, "shifty")
    execute_flow_run(run_id, installation.platform, worker="w1")
    final = execute_flow_run(run_id, installation.platform, worker="w1")
    assert final.type is StateType.FAILED
    assert "diverged from its recorded history" in final.message
    assert "--from-scratch" in final.message
    assert _calls(log) == ["a"]  # `other` was not run in `a`'s place
    retry_flow_run(run_id, platform=installation.platform, from_scratch=True)
    assert execute_flow_run(run_id, installation.platform, worker="w1").is_completed()
    assert _calls(log) == ["a", "other"]


def test_strato_flow_run_resume_says_what_is_wrong_and_keeps_the_run_paused(
    installation: Installation, tmp_path: Path
) -> None:
    run_id, _ = _start(installation, tmp_path, "approve")
    execute_flow_run(run_id, installation.platform, worker="w1")

    shown = runner.invoke(app, ["flow-run", "inspect", run_id, "--json"])
    assert shown.exit_code == 0, shown.output
    waiting = json.loads(shown.stdout)["waiting_for"]
    assert waiting["pause_key"] == "pause-0" and not waiting["holds_compute"]
    assert set(waiting["input_schema"]["properties"]) == {"approved", "comment"}

    bad = runner.invoke(app, ["flow-run", "resume", run_id, "--input", "approved=maybe"])
    assert bad.exit_code != 0
    assert "approved: 'maybe' is not of type 'boolean'" in " ".join(bad.output.split())
    assert "stays paused" in bad.output
    missing = runner.invoke(app, ["flow-run", "resume", run_id])
    assert "waits for input (approved, comment)" in " ".join(missing.output.split())
    not_json = runner.invoke(app, ["flow-run", "resume", run_id, "--input-json", "{"])
    assert "--input-json is not valid JSON" in not_json.output
    assert _read(installation, run_id).state.name == "Suspended"

    good = runner.invoke(app, ["flow-run", "resume", run_id, "--input-json", '{"approved": false}'])
    assert good.exit_code == 0, good.output
    assert "Resuming" in good.output
    assert execute_flow_run(run_id, installation.platform, worker="w1").result() == "A B-FALSE "
    shown = runner.invoke(app, ["flow-run", "inspect", run_id])
    assert shown.exit_code == 0, shown.output
    assert "flow attempt" in shown.output  # which attempt ran each task run (the rest replayed)

    again = runner.invoke(app, ["flow-run", "resume", run_id])
    assert again.exit_code != 0 and "not paused" in again.output


@pytest.mark.date_sensitive
def test_a_pause_not_resumed_in_time_fails_the_run(
    installation: Installation, tmp_path: Path
) -> None:
    run_id, _ = _start(installation, tmp_path, "approve")
    execute_flow_run(run_id, installation.platform, worker="w1")
    assert sweep(installation.platform, installation.clock.now()).timed_out == 0
    installation.clock.advance(601)
    with pytest.raises(NotPausedError, match="has passed"):
        resume_flow_run(run_id, run_input={"approved": True})
    assert sweep(installation.platform, installation.clock.now()).timed_out == 1
    run = _read(installation, run_id)
    assert run.state.type is StateType.FAILED
    assert "was not resumed before its pause at 'pause-0' timed out" in run.state.message


def test_a_crashed_attempt_is_retried_and_replays_what_it_completed(
    installation: Installation, tmp_path: Path
) -> None:
    run_id, log = _start(installation, tmp_path, "three")
    # Attempt 1 fails at `flaky` and hands its retry off; the worker running attempt 2
    # dies before it starts any task: the sweep's crash-and-retry makes attempt 3.
    execute_flow_run(run_id, installation.platform, worker="w1")
    platform = installation.platform
    claimed = claim_flow_run(platform.services.backend, run_id, now=installation.clock.now())
    assert claimed is not None
    mark_crashed(platform, run_id, "The worker's process was killed.")
    assert _read(installation, run_id).state.name == "AwaitingRetry"
    final = execute_flow_run(run_id, platform, worker="w2")
    assert final.is_completed(), final
    assert _calls(log) == ["a", "flaky", "flaky", "c"]


def _shipment(resource: str, boxes: int, name: str = "shipment.arrived") -> Event:
    return Event(
        event=name,
        resource=Resource(labels={"stratoflow.resource.id": resource}),
        payload={"boxes": boxes},
    )


def test_a_run_waits_for_a_matching_event_without_compute(
    installation: Installation, tmp_path: Path
) -> None:
    run_id, log = _start(installation, tmp_path, "awaits")
    state = execute_flow_run(run_id, installation.platform, worker="w1")
    assert (state.type, state.name) == (StateType.PAUSED, "Suspended")
    assert "Waiting for event 'shipment.arrived'" in state.message
    waits = EventWaits(installation.platform)
    sent_before = len(installation.sent)
    assert waits.handle([_shipment("shipment.42", 1, name="shipment.lost")]) == 0
    assert waits.handle([_shipment("shipment.7", 2)]) == 0  # another resource
    assert _read(installation, run_id).state.name == "Suspended"
    assert waits.handle([_shipment("shipment.42", 3)]) == 1
    assert waits.handle([_shipment("shipment.42", 4)]) == 0  # delivered once
    assert _read(installation, run_id).state.name == "Resuming"
    assert len(installation.sent) == sent_before + 1
    final = execute_flow_run(run_id, installation.platform, worker="w2")
    assert final.result() == "B-3"
    assert _calls(log) == ["a", "b-3"]


@pytest.mark.date_sensitive
def test_a_wait_for_an_event_that_never_comes_returns_none_after_its_timeout(
    installation: Installation, tmp_path: Path
) -> None:
    deploy_files(installation, tmp_path / "project", PROJECT)
    log = tmp_path / "awaits.log"
    platform = installation.platform
    run, _ = schedule_flow_run(
        platform,
        platform.deployments.get("awaits"),
        scheduled_time=installation.clock.now(),
        parameters={"log": str(log), "timeout": 60},
    )
    execute_flow_run(run.id, platform, worker="w1")
    installation.clock.advance(61)
    assert sweep(platform, installation.clock.now()).timed_out == 1
    assert _read(installation, run.id).state.name == "Resuming"
    assert execute_flow_run(run.id, platform, worker="w1").result() == "B-NONE"


def test_an_event_that_comes_while_the_run_suspends_is_not_lost(
    installation: Installation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id, log = _start(installation, tmp_path, "awaits")
    register = wait_for_event_module.register_waiter

    def register_then_event_arrives(*args: object, **kwargs: object) -> None:
        register(*args, **kwargs)  # type: ignore[arg-type]
        # The stream sees the event before the run has written its Suspended state.
        assert EventWaits(installation.platform).handle([_shipment("shipment.42", 5)]) == 0

    monkeypatch.setattr(wait_for_event_module, "register_waiter", register_then_event_arrives)
    state = execute_flow_run(run_id, installation.platform, worker="w1")
    assert state.name == "Resuming"  # it found the event when it suspended and went on
    monkeypatch.undo()
    assert execute_flow_run(run_id, installation.platform, worker="w1").result() == "B-5"
    assert _calls(log) == ["a", "b-5"]


def test_subflows_are_replayed_or_continued_by_the_parents_next_attempt(
    installation: Installation, tmp_path: Path
) -> None:
    run_id, log = _start(installation, tmp_path, "parent")
    # Attempt 1: the child's `flaky` fails, so the child fails and so does the parent.
    assert execute_flow_run(run_id, installation.platform, worker="w1").name == "AwaitingRetry"
    # Attempt 2: the child runs again as its next attempt (replaying `child-a`); it
    # completes; then the parent fails once on its own.
    assert execute_flow_run(run_id, installation.platform, worker="w1").name == "AwaitingRetry"
    # Attempt 3: the child is replayed whole.
    final = execute_flow_run(run_id, installation.platform, worker="w1")
    assert final.is_completed(), final
    assert final.result() == "CHILD-Aok" + "AFTER"
    assert _calls(log) == ["child-a", "flaky", "flaky", "after"]
    children = [
        r
        for r in installation.new_platform().services.backend.list_flow_runs()
        if r.parent_flow_run_id == run_id
    ]
    assert len(children) == 1 and children[0].run_count == 2  # one subflow run, two attempts


def test_a_sleep_whose_wake_up_message_was_lost_is_sent_by_the_tick(
    installation: Installation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id, log = _start(installation, tmp_path, "sleeper")
    # The worker dies between writing Sleeping and sending the wake-up message.
    monkeypatch.setattr("stratoflow.workers.execute.hand_off_retry", lambda *a: True)
    assert execute_flow_run(run_id, installation.platform, worker="w1").name == "Sleeping"
    monkeypatch.undo()
    sent_before = len(installation.sent)
    Scheduler(installation.platform).tick(installation.clock.now())
    assert len(installation.sent) == sent_before  # not due yet: nothing to send
    installation.clock.advance(3600 + 30)
    Scheduler(installation.platform).tick(installation.clock.now())
    [(message, _delay)] = installation.sent_messages()[sent_before:]
    assert message.flow_run_id == run_id
    assert execute_flow_run(run_id, installation.platform, worker="w2").result() == "AB"
    assert _calls(log) == ["a", "b"]


def test_an_async_flow_suspends_sleeps_and_replays_as_a_def_one(
    installation: Installation, tmp_path: Path
) -> None:
    run_id, log = _start(installation, tmp_path, "async-approve")
    assert execute_flow_run(run_id, installation.platform, worker="w1").name == "Suspended"
    resume_flow_run(run_id, run_input={"approved": True})
    assert execute_flow_run(run_id, installation.platform, worker="w1").name == "Sleeping"
    installation.clock.advance(5)
    final = execute_flow_run(run_id, installation.platform, worker="w1")
    assert final.result() == "A B-TRUE"
    assert _calls(log) == ["a", "b-True"]
