"""MemoryBackend: storage of runs, states and logs, and atomic state changes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from stratoflow.backends import Backend, MemoryBackend
from stratoflow.exceptions import ConflictError, InvalidTransitionError, ObjectNotFound
from stratoflow.models import FlowRun, LogEntry, TaskRun
from stratoflow.states import Completed, Pending, Running, Scheduled


def _flow_run(run_id: str = "f1") -> FlowRun:
    return FlowRun(id=run_id, name=f"name-{run_id}", flow_name="flow")


def _task_run(run_id: str = "t1", flow_run_id: str | None = "f1") -> TaskRun:
    return TaskRun(
        id=run_id,
        name=f"task-{run_id}",
        task_key="task-abc",
        dynamic_key="0",
        task_name="task",
        flow_run_id=flow_run_id,
    )


def _log(message: str, flow_run_id: str | None, task_run_id: str | None = None) -> LogEntry:
    return LogEntry(
        timestamp=datetime.now(UTC),
        level=20,
        level_name="INFO",
        logger="test",
        message=message,
        flow_run_id=flow_run_id,
        task_run_id=task_run_id,
    )


def test_memory_backend_satisfies_the_backend_protocol() -> None:
    assert isinstance(MemoryBackend(), Backend)


def test_create_and_read_flow_runs() -> None:
    backend = MemoryBackend()
    first = backend.create_flow_run(_flow_run("a"))
    backend.create_flow_run(_flow_run("b"))
    assert backend.read_flow_run("a") is first
    assert [r.id for r in backend.list_flow_runs()] == ["b", "a"]  # newest first
    assert [r.id for r in backend.list_flow_runs(limit=1)] == ["b"]


def test_create_and_list_task_runs_in_creation_order() -> None:
    backend = MemoryBackend()
    backend.create_flow_run(_flow_run("f1"))
    for run_id in ("t1", "t2", "t3"):
        backend.create_task_run(_task_run(run_id))
    backend.create_task_run(_task_run("other", flow_run_id="f2"))
    assert [t.id for t in backend.list_task_runs("f1")] == ["t1", "t2", "t3"]
    assert [t.id for t in backend.list_task_runs("f2")] == ["other"]
    assert backend.list_task_runs("unknown") == []
    assert backend.read_task_run("t2").name == "task-t2"


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.read_flow_run("missing"),
        lambda b: b.read_task_run("missing"),
        lambda b: b.set_flow_run_state("missing", Pending()),
        lambda b: b.set_task_run_state("missing", Pending()),
    ],
    ids=["read_flow_run", "read_task_run", "set_flow_run_state", "set_task_run_state"],
)
def test_unknown_ids_raise_object_not_found(call) -> None:  # type: ignore[no-untyped-def]
    backend = MemoryBackend()
    with pytest.raises(ObjectNotFound, match="'missing'"):
        call(backend)
    # ObjectNotFound is also a LookupError.
    with pytest.raises(LookupError):
        call(backend)


def test_set_flow_run_state_applies_the_rules() -> None:
    backend = MemoryBackend()
    run = backend.create_flow_run(_flow_run())
    backend.set_flow_run_state(run.id, Pending())
    result = backend.set_flow_run_state(run.id, Running(), expected_version=1)
    assert result.version == 2
    assert run.state is result.state
    backend.set_flow_run_state(run.id, Completed())
    with pytest.raises(InvalidTransitionError):
        backend.set_flow_run_state(run.id, Running())
    forced = backend.set_flow_run_state(run.id, Scheduled(), force=True)
    assert forced.applied
    assert backend.read_flow_run(run.id).state.name == "Scheduled"  # type: ignore[union-attr]
    with pytest.raises(ConflictError):
        backend.set_flow_run_state(run.id, Pending(), expected_version=1)


def test_set_task_run_state_is_idempotent_by_transition_id() -> None:
    backend = MemoryBackend()
    run = backend.create_task_run(_task_run())
    first = backend.set_task_run_state(run.id, Pending(), transition_id="x")
    again = backend.set_task_run_state(run.id, Pending(), transition_id="x")
    assert first.applied
    assert not again.applied
    assert run.version == 1
    assert run.state_history == []


def test_logs_are_stored_per_flow_run_and_filtered_by_task_run() -> None:
    backend = MemoryBackend()
    backend.write_logs([_log("one", "f1"), _log("two", "f1", "t1"), _log("three", "f2")])
    backend.write_logs([_log("four", "f1", "t2")])
    assert [e.message for e in backend.read_logs("f1")] == ["one", "two", "four"]
    assert [e.message for e in backend.read_logs("f1", task_run_id="t1")] == ["two"]
    assert [e.message for e in backend.read_logs("f2")] == ["three"]
    assert backend.read_logs("unknown") == []


def _race_scheduled_to_pending(threads_per_race: int) -> tuple[FlowRun, int, list[int], int]:
    """Threads start together and each tries Scheduled -> Pending at the same version."""
    backend = MemoryBackend()
    run = backend.create_flow_run(_flow_run())
    backend.set_flow_run_state(run.id, Scheduled())
    version = run.version
    barrier = threading.Barrier(threads_per_race, timeout=5)
    wins: list[int] = []
    conflicts: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def contend(worker: int) -> None:
        barrier.wait()
        try:
            backend.set_flow_run_state(
                run.id, Pending(f"worker {worker}"), expected_version=version
            )
        except ConflictError:
            with lock:
                conflicts.append(worker)
        except BaseException as exc:
            with lock:
                errors.append(exc)
        else:
            with lock:
                wins.append(worker)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(threads_per_race)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    return run, version, wins, len(conflicts)


def test_racing_threads_with_expected_version_exactly_one_wins() -> None:
    threads_per_race = 8
    for race in range(50):
        run, version, wins, conflicts = _race_scheduled_to_pending(threads_per_race)
        assert len(wins) == 1, f"race {race}: winners {wins}"
        assert conflicts == threads_per_race - 1
        assert run.version == version + 1
        assert run.state is not None
        assert run.state.message == f"worker {wins[0]}"
        assert [s.name for s in run.state_history] == ["Scheduled"]
