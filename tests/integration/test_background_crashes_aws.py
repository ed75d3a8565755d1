"""Background task runs whose task worker died, on moto: the crash sweep of the scheduler
tick and a worker that receives the run's message again settle them (Crashed; retried
when the task has retries left; Cancelled when they were Cancelling), futures see it; a
run held by a live worker is left alone (docs/background-tasks.md#crashes)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import _background_tasks as tasks
import pytest
from _deploy_fixtures import Installation, installation  # noqa: F401

from stratoflow import resources
from stratoflow.backends.aws.held_task_runs import write_states
from stratoflow.backends.aws.items import to_item
from stratoflow.background.futures import BackgroundTaskFuture
from stratoflow.background.queue import TaskQueue
from stratoflow.background.sweep import SEND_GRACE, sweep_task_runs
from stratoflow.exceptions import CrashedRun
from stratoflow.models import TaskRun
from stratoflow.states import AwaitingRetry, Crashed, Pending, Running, StateType
from stratoflow.sweeps import sweep
from stratoflow.task_worker import serve

pytestmark = pytest.mark.date_sensitive  # leases end on the fake clock (tests/timeshift.py)

LEASE = 90.0  # zombie_after_seconds, the default


@pytest.fixture(autouse=True)
def clean_calls() -> Iterator[None]:
    tasks.CALLS.clear()
    tasks.STARTED.clear()
    tasks.GATE.clear()
    yield
    tasks.GATE.set()


def task_queue(found: Installation) -> TaskQueue:
    return TaskQueue(found.session.client("sqs"), found.platform.settings.queue_prefix)


def purge(found: Installation) -> None:
    """What a poller does at its claim: the run's message is gone."""
    queue = task_queue(found)
    while messages := queue.receive(max_messages=10, wait_seconds=0, visibility=60):
        for message in messages:
            queue.delete(message["ReceiptHandle"])


def held_by_a_dead_worker(found: Installation, future: BackgroundTaskFuture[Any]) -> TaskRun:
    """What a task worker killed in the middle of its first attempt leaves: the run
    Running, its lease started at the claim and never renewed (the process that held it
    is gone)."""
    dead = found.new_platform().backend
    run = dead.read_task_run(future.task_run_id)
    task = {t.task_key: t for t in (tasks.add, tasks.sturdy, tasks.waits)}[run.task_key]
    dead.held.claim(
        run,
        [Pending("Claimed by a worker that dies.")],
        now=found.clock.now(),
        lease_seconds=LEASE,
        retries=task.options.retries,
    )
    run.run_count = 1
    dead.held.set_state(run.id, Running())
    dead.held.release(run.id)
    return found.services.backend.read_task_run(run.id)


def in_a_thread(task: Any, processed: list[int] | None = None) -> threading.Thread:
    """A task worker in a thread, until the queue is empty and its runs are done (`once`:
    it receives without waiting, so it never holds moto's request lock for long)."""
    found = processed if processed is not None else []
    worker = threading.Thread(target=lambda: found.append(serve(task, once=True)), daemon=True)
    worker.start()
    return worker


def history(found: Installation, run_id: str) -> list[str]:
    run = found.services.backend.read_task_run(run_id)
    assert run.state is not None
    return [s.name for s in [*run.state_history, run.state]]


def task_messages(found: Installation) -> list[dict[str, Any]]:
    return [m for m in found.sent if m["QueueUrl"].endswith("-tasks")]


def test_the_sweep_crashes_a_run_whose_worker_died_and_the_future_raises(
    installation: Installation,
) -> None:
    future = tasks.add.delay(1, 2)
    purge(installation)
    held = held_by_a_dead_worker(installation, future)
    assert held.sweep_due == installation.clock.now() + timedelta(seconds=LEASE)
    installation.clock.advance(LEASE - 1)
    assert sweep(installation.platform, installation.clock.now()).task_runs.crashed == 0
    installation.clock.advance(2)
    report = sweep(installation.platform, installation.clock.now()).task_runs
    assert (report.crashed, report.retried) == (1, 0)
    assert history(installation, future.task_run_id)[-2:] == ["Running", "Crashed"]
    state = future.state
    assert "Its task worker stopped" in (state.message or "")
    assert "found by the crash sweep" in (state.message or "")
    future.wait(timeout=1)  # final: returns at once
    with pytest.raises(CrashedRun, match="Its task worker stopped"):
        future.result(timeout=1)
    assert isinstance(future.result(timeout=1, raise_on_failure=False), CrashedRun)
    # Final runs leave the index: the next tick reads nothing.
    assert sweep(installation.platform, installation.clock.now()).task_runs.crashed == 0


def test_a_crashed_run_with_retries_left_is_sent_again_and_completes(
    installation: Installation,
) -> None:
    future = tasks.sturdy.delay("x")
    purge(installation)
    held_by_a_dead_worker(installation, future)
    sent_before = len(task_messages(installation))
    installation.clock.advance(LEASE + 1)
    report = sweep(installation.platform, installation.clock.now()).task_runs
    assert (report.crashed, report.retried) == (1, 1)
    assert len(task_messages(installation)) == sent_before + 1
    assert future.state.name == "AwaitingRetry"  # never Crashed-and-final to a future
    assert serve(tasks.sturdy, once=True) == 1
    assert future.result(timeout=5) == "ok x"
    run = installation.services.backend.read_task_run(future.task_run_id)
    assert run.run_count == 2  # the crashed attempt counts
    names = history(installation, future.task_run_id)
    assert names[names.index("Crashed") :] == [
        "Crashed",
        "AwaitingRetry",
        "Pending",
        "Pending",
        "Retrying",
        "Completed",
    ]
    assert tasks.CALLS == [("sturdy", "x")]


def test_a_message_delivered_again_after_the_worker_died_retries_the_run(
    installation: Installation,
) -> None:
    """The Lambda task worker's case: its invocation timed out, SQS delivers the message
    again once its visibility timeout is over."""
    future = tasks.sturdy.delay("again")
    held_by_a_dead_worker(installation, future)  # the message stays in the queue
    installation.clock.advance(LEASE + 1)
    assert serve(tasks.sturdy, once=True) == 1
    assert future.result(timeout=5) == "ok again"
    names = history(installation, future.task_run_id)
    assert names[names.index("Crashed") :] == [
        "Crashed",
        "AwaitingRetry",
        "Pending",
        "Pending",
        "Retrying",
        "Completed",
    ]
    crashed = installation.services.backend.read_task_run(future.task_run_id).state_history[
        names.index("Crashed")
    ]
    assert "received its message again" in (crashed.message or "")
    # Settled: the sweep finds nothing due.
    report = sweep(installation.platform, installation.clock.now()).task_runs
    assert (report.crashed, report.retried, report.resent) == (0, 0, 0)


def test_a_message_delivered_again_without_retries_left_crashes_the_run(
    installation: Installation,
) -> None:
    future = tasks.add.delay(2, 2)
    held_by_a_dead_worker(installation, future)
    installation.clock.advance(LEASE + 1)
    assert serve(tasks.add, once=True) == 1
    with pytest.raises(CrashedRun, match="received its message again"):
        future.result(timeout=5)
    assert tasks.CALLS == []


def test_a_duplicate_message_of_a_run_held_by_a_live_worker_is_dropped(
    installation: Installation,
) -> None:
    future = tasks.add.delay(3, 3)
    held_by_a_dead_worker(installation, future)
    installation.clock.advance(LEASE - 10)  # its lease has not ended
    assert serve(tasks.add, once=True) == 1
    assert future.state.type is StateType.RUNNING
    assert tasks.CALLS == []
    queue = task_queue(installation)
    attributes = queue.client.get_queue_attributes(
        QueueUrl=queue.url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"  # deleted


def test_a_renewed_lease_is_not_crashed(installation: Installation) -> None:
    """A live worker renews its lease while it runs: the run stays Running however long
    it takes, and its result is written."""
    future = tasks.waits.delay("long")
    worker = in_a_thread(tasks.waits)
    try:
        assert tasks.STARTED.wait(10)
        backend = installation.services.backend
        for _ in range(3):
            installation.clock.advance(LEASE - 30)
            assert backend.held.renew(future.task_run_id, installation.clock.now(), LEASE)
            report = sweep(installation.platform, installation.clock.now()).task_runs
            assert report.crashed == 0
        assert future.state.type is StateType.RUNNING
        tasks.GATE.set()
        assert future.result(timeout=10) == "done long"
    finally:
        tasks.GATE.set()
        worker.join(30)


def test_a_worker_that_outlived_its_lease_writes_nothing_over_the_crash(
    installation: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that stopped renewing its lease but lives on (a long pause, a partition):
    the sweep crashes the run; when the attempt ends, its Completed is not written."""
    backend = installation.services.backend
    monkeypatch.setattr(backend.held, "renew", lambda *args: False)
    future = tasks.waits.delay("late")
    results: list[int] = []
    worker = in_a_thread(tasks.waits, results)
    try:
        assert tasks.STARTED.wait(10)
        installation.clock.advance(LEASE + 1)
        checker = installation.new_platform()
        report = sweep(checker, installation.clock.now()).task_runs
        assert report.crashed == 1
    finally:
        tasks.GATE.set()
        worker.join(30)
    assert results == [1]
    stored = checker.backend.read_task_run(future.task_run_id)
    assert stored.state is not None and stored.state.type is StateType.CRASHED
    assert stored.result_record is None


def test_a_retry_whose_message_was_never_sent_is_sent_by_a_later_tick(
    installation: Installation,
) -> None:
    future = tasks.sturdy.delay("unsent")
    purge(installation)
    held = held_by_a_dead_worker(installation, future)
    installation.clock.advance(LEASE + 1)
    # Whoever settled it wrote the retry and died before sending its message.
    write_states(
        installation.platform.backend.dynamodb,
        installation.platform.backend.table,
        held,
        [Crashed("Its task worker stopped.", retry=True), AwaitingRetry("Retrying.")],
        heartbeat=None,
        sweep_due=installation.clock.now() + SEND_GRACE,
        force=True,
    )
    sent_before = len(task_messages(installation))
    assert sweep(installation.platform, installation.clock.now()).task_runs.resent == 0
    installation.clock.advance(SEND_GRACE.total_seconds() + 1)
    assert sweep(installation.platform, installation.clock.now()).task_runs.resent == 1
    assert len(task_messages(installation)) == sent_before + 1
    # Sent: due again only when that message would have expired unreceived.
    installation.clock.advance(3600)
    assert sweep(installation.platform, installation.clock.now()).task_runs.resent == 0
    assert serve(tasks.sturdy, once=True) == 1
    assert future.result(timeout=5) == "ok unsent"


def test_a_tick_settles_a_bounded_number_of_runs_oldest_first(
    installation: Installation,
) -> None:
    futures = []
    for index in range(3):
        futures.append(tasks.add.delay(index, 0))
        installation.clock.advance(1)
    purge(installation)
    for future in futures:
        held_by_a_dead_worker(installation, future)
        installation.clock.advance(1)
    installation.clock.advance(LEASE + 1)
    backend = installation.platform.backend
    queue = task_queue(installation)
    first = sweep_task_runs(backend, queue, installation.clock.now(), limit=2)
    assert first.crashed == 2
    assert [f.state.type for f in futures] == [
        StateType.CRASHED,
        StateType.CRASHED,
        StateType.RUNNING,
    ]
    assert sweep_task_runs(backend, queue, installation.clock.now(), limit=2).crashed == 1


def test_items_planted_in_the_due_partition_are_ignored(installation: Installation) -> None:
    """A worker may write any item of its partitions with any index attribute: a copy of
    a background run under a flow run's key, listed as due, does not make the sweep move
    the real run; a genuine due run next to it is still settled."""
    genuine = tasks.add.delay(4, 4)
    purge(installation)
    held_by_a_dead_worker(installation, genuine)
    alive = tasks.add.delay(5, 5)
    purge(installation)
    long_ago = (installation.clock.now() - timedelta(days=1)).isoformat()
    planted = {
        **resources.flow_run_key("0b0c0d0e-evil"),
        "entity": "task_run",
        "id": alive.task_run_id,
        "name": "planted",
        "task_key": tasks.add.task_key,
        "dynamic_key": "x",
        "task_name": "add",
        "state": {"type": "RUNNING", "name": "Running", "timestamp": long_ago},
        "version": 1,
        "heartbeat": long_ago,
        "sweep_due": long_ago,
        resources.BY_STATE.partition_key: resources.TASK_RUNS_DUE_PARTITION,
        resources.BY_STATE.sort_key: f"{long_ago}#{alive.task_run_id}",
    }
    backend = installation.platform.backend
    backend.dynamodb.put_item(TableName=backend.table, Item=to_item(planted))
    installation.clock.advance(LEASE + 1)
    report = sweep(installation.platform, installation.clock.now()).task_runs
    assert report.crashed == 1
    assert genuine.state.type is StateType.CRASHED
    assert alive.state.type is StateType.SCHEDULED  # untouched


def test_a_finished_run_listed_as_due_is_taken_out_of_the_list(
    installation: Installation,
) -> None:
    """An index entry stratoflow never writes (a final run listed as due, written by hand
    or by a worker): not acted on, and taken out of the partition so that later ticks do
    not read it again."""
    future = tasks.add.delay(6, 6)
    purge(installation)
    backend = installation.platform.backend
    long_ago = (installation.clock.now() - timedelta(days=1)).isoformat()
    key = {k: {"S": v} for k, v in resources.task_run_key(None, future.task_run_id).items()}
    backend.dynamodb.update_item(
        TableName=backend.table,
        Key=key,
        UpdateExpression="SET #p = :p, #s = :s, #state = :state, state_type = :t",
        ExpressionAttributeNames={
            "#p": resources.BY_STATE.partition_key,
            "#s": resources.BY_STATE.sort_key,
            "#state": "state",
        },
        ExpressionAttributeValues=to_item(
            {
                ":p": resources.TASK_RUNS_DUE_PARTITION,
                ":s": f"{long_ago}#{future.task_run_id}",
                ":state": {"type": "COMPLETED", "name": "Completed", "timestamp": long_ago},
                ":t": "COMPLETED",
            }
        ),
    )
    report = sweep(installation.platform, installation.clock.now()).task_runs
    assert (report.crashed, report.resent, report.cancelled) == (0, 0, 0)
    item = backend.dynamodb.get_item(TableName=backend.table, Key=key)["Item"]
    assert resources.BY_STATE.partition_key not in item
    assert item["state_type"] == {"S": "COMPLETED"}
