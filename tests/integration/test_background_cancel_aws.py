"""Cancelling background task runs on moto (`stratoflow.runs.cancel_task_run`, `strato
task-run cancel`): a run waiting for a worker is Cancelled and never run; a running one is
Cancelling, stopped at its next state write (no further attempt), and ends Cancelled,
never Completed over the cancellation (docs/background-tasks.md#cancellation)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import _background_tasks as tasks
import pytest
from _deploy_fixtures import Installation, installation  # noqa: F401
from typer.testing import CliRunner

from stratoflow import runs
from stratoflow.background.cancel import cancel_task_run
from stratoflow.background.queue import TaskQueue
from stratoflow.cli import app
from stratoflow.exceptions import CancelledRun, InvalidTransitionError
from stratoflow.states import Pending, Running, StateType
from stratoflow.sweeps import sweep
from stratoflow.task_worker import serve

pytestmark = pytest.mark.date_sensitive  # leases end on the fake clock (tests/timeshift.py)
runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_calls() -> Iterator[None]:
    tasks.CALLS.clear()
    tasks.STARTED.clear()
    tasks.GATE.clear()
    yield
    tasks.GATE.set()


def queued(found: Installation) -> int:
    queue = TaskQueue(found.session.client("sqs"), found.platform.settings.queue_prefix)
    attributes = queue.client.get_queue_attributes(
        QueueUrl=queue.url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def in_a_thread(task: object) -> threading.Thread:
    """A task worker in a thread until its queue is empty and its runs done (`once`)."""
    worker = threading.Thread(target=serve, args=(task,), kwargs={"once": True}, daemon=True)
    worker.start()
    return worker


def names(found: Installation, run_id: str) -> list[str]:
    run = found.services.backend.read_task_run(run_id)
    assert run.state is not None
    return [s.name for s in [*run.state_history, run.state]]


def test_a_run_cancelled_before_a_worker_took_it_is_never_run(
    installation: Installation,
) -> None:
    future = tasks.add.delay(1, 2)
    assert runs.cancel_task_run(future.task_run_id).name == "Cancelled"
    assert serve(tasks.add, once=True) == 1  # its message is received, dropped, deleted
    assert tasks.CALLS == []
    assert queued(installation) == 0
    assert names(installation, future.task_run_id) == ["Scheduled", "Cancelled"]
    future.wait(timeout=1)
    with pytest.raises(CancelledRun, match="before a task worker started it"):
        future.result(timeout=1)
    with pytest.raises(InvalidTransitionError, match="nothing to cancel"):
        runs.cancel_task_run(future.task_run_id)


@pytest.mark.parametrize("by", ["this process", "another client", "another, then a beat"])
def test_a_running_run_ends_cancelled_not_completed(installation: Installation, by: str) -> None:
    """Cancelled from the worker's own process (its held copy is Cancelling), or from
    another client: the worker's next write finds the run changed (or, after a lease
    renewal, its copy Cancelling) and writes Cancelled instead of Completed."""
    future = tasks.waits.delay("x")
    worker = in_a_thread(tasks.waits)
    backend = (
        installation.services.backend
        if by == "this process"
        else installation.new_platform().backend
    )
    try:
        assert tasks.STARTED.wait(10)
        assert cancel_task_run(backend, future.task_run_id).name == "Cancelling"
        assert cancel_task_run(backend, future.task_run_id).name == "Cancelling"  # idempotent
        if by == "another, then a beat":
            held = installation.services.backend.held
            assert held.renew(future.task_run_id, installation.clock.now(), 90)
        assert future.state.name == "Cancelling"
    finally:
        tasks.GATE.set()  # the attempt ends: it would complete
        worker.join(30)
    assert names(installation, future.task_run_id)[-3:] == ["Running", "Cancelling", "Cancelled"]
    run = installation.services.backend.read_task_run(future.task_run_id)
    assert run.result_record is None
    assert run.state is not None and "outcome was discarded" in (run.state.message or "")
    with pytest.raises(CancelledRun):
        future.result(timeout=1)


def test_a_cancelled_run_is_not_retried(installation: Installation) -> None:
    """Cancelled during an attempt that then fails: the retry it had left does not run."""
    future = tasks.waits_then_fails.delay("y")
    worker = in_a_thread(tasks.waits_then_fails)
    try:
        assert tasks.STARTED.wait(10)
        runs.cancel_task_run(future.task_run_id)
    finally:
        tasks.GATE.set()
        worker.join(30)
    assert tasks.CALLS == [("waits_then_fails", "y")]  # one attempt
    assert future.state.type is StateType.CANCELLED
    assert "AwaitingRetry" in (future.state.message or "")


def test_a_cancelling_run_whose_worker_died_is_cancelled_by_the_sweep(
    installation: Installation,
) -> None:
    future = tasks.add.delay(5, 6)
    dead = installation.new_platform().backend
    run = dead.read_task_run(future.task_run_id)
    now = installation.clock.now()
    dead.held.claim(run, [Pending("Claimed.")], now=now, lease_seconds=90, retries=0)
    dead.held.set_state(run.id, Running())
    dead.held.release(run.id)  # the worker dies
    assert runs.cancel_task_run(future.task_run_id).name == "Cancelling"
    installation.clock.advance(60)
    assert sweep(installation.platform, installation.clock.now()).task_runs.cancelled == 0
    installation.clock.advance(31)
    assert sweep(installation.platform, installation.clock.now()).task_runs.cancelled == 1
    state = future.state
    assert state.type is StateType.CANCELLED
    assert "before it finished the cancellation" in (state.message or "")


def test_the_cli_cancels_and_inspects_a_background_run(installation: Installation) -> None:
    future = tasks.add.delay(7, 8)
    result = runner.invoke(app, ["task-run", "cancel", future.task_run_id])
    assert result.exit_code == 0, result.output
    assert f"Task run {future.task_run_id} is Cancelled." in result.output
    shown = runner.invoke(app, ["task-run", "inspect", future.task_run_id, "--json"])
    assert shown.exit_code == 0, shown.output
    assert '"state": "Cancelled"' in shown.output
    again = runner.invoke(app, ["task-run", "cancel", future.task_run_id])
    assert again.exit_code == 2
    assert "nothing to cancel" in again.output
    unknown = runner.invoke(app, ["task-run", "cancel", "no-such-run"])
    assert unknown.exit_code == 2
    assert "No task run with id 'no-such-run'" in unknown.output
