"""Property-based tests (hypothesis): the transition table under any sequence of
transitions, and claims raced by many threads (on the memory backend, and a smaller run
on the emulator, where each thread is a separate DynamoDB client)."""

from __future__ import annotations

import contextlib
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from stratoflow.backends.aws import AwsBackend, build_aws_services
from stratoflow.backends.base import Backend
from stratoflow.backends.memory import MemoryBackend
from stratoflow.exceptions import ConflictError, InvalidTransitionError
from stratoflow.models import STATE_HISTORY_LIMIT, FlowRun
from stratoflow.orchestration.claims import claim_flow_run
from stratoflow.orchestration.transitions import apply_transition, was_applied
from stratoflow.settings import load_settings
from stratoflow.states import (
    TERMINAL_STATES,
    AwaitingRetry,
    Cancelling,
    Completed,
    Crashed,
    Late,
    Paused,
    Pending,
    Running,
    Scheduled,
    State,
    StateType,
    is_allowed_transition,
)
from tests.chaos._chaos import SCALE, Stack, record_figures

# The transition table, driven by hypothesis


def _state(state_type: StateType) -> State:
    return State(type=state_type, name=state_type.value.title())


class TransitionMachine(RuleBasedStateMachine):
    """Any sequence of proposals (forced or not, with a stale or current expected
    version, with a new or a repeated transition id) against one run."""

    def __init__(self) -> None:
        super().__init__()
        self.run = FlowRun(id="run", name="run", flow_name="flow")
        self.terminal: State | None = None
        self.version = 0
        self.applied = 0
        self.used_ids: list[str] = []

    @rule(
        proposed=st.sampled_from(list(StateType)),
        force=st.booleans(),
        stale=st.booleans(),
        reuse_id=st.booleans(),
    )
    def propose(self, proposed: StateType, force: bool, stale: bool, reuse_id: bool) -> None:
        run = self.run
        before, before_version = run.state, run.version
        history = list(run.state_history)
        transition_id = (
            self.used_ids[-1] if reuse_id and self.used_ids else f"t{len(self.used_ids)}"
        )
        repeated = was_applied(run.recent_transition_ids, transition_id)
        expected = before_version - 1 if stale and before_version > 0 else before_version
        state = _state(proposed)
        try:
            result = apply_transition(
                run, state, expected_version=expected, transition_id=transition_id, force=force
            )
        except ConflictError:
            assert not repeated and expected != before_version
            assert (run.state, run.version) == (before, before_version)
            return
        except InvalidTransitionError:
            assert not force and not repeated
            assert not is_allowed_transition(before.type if before else None, proposed)
            assert (run.state, run.version) == (before, before_version)
            return
        if repeated:  # a retried request: applied once, never twice
            assert not result.applied
            assert (run.state, run.version) == (before, before_version)
            return
        assert result.applied
        assert force or is_allowed_transition(before.type if before else None, proposed)
        if before is not None and before.type in TERMINAL_STATES:
            assert force, "a terminal state was left without force"
        assert run.state is state
        assert run.version == before_version + 1
        if before is not None:
            assert run.state_history[-1] is before
            assert run.state_history[:-1] == history[-(STATE_HISTORY_LIMIT - 1) :]
        self.used_ids.append(transition_id)
        self.applied += 1
        self.version = run.version
        self.terminal = state if proposed in TERMINAL_STATES else None

    @precondition(lambda self: self.terminal is not None)
    @rule()
    def nothing_leaves_a_terminal_state_without_force(self) -> None:
        for proposed in StateType:
            with pytest.raises(InvalidTransitionError):
                apply_transition(self.run, _state(proposed))
        assert self.run.state is self.terminal

    @invariant()
    def version_counts_the_applied_transitions(self) -> None:
        assert self.run.version == self.applied == self.version
        assert len(self.run.state_history) <= STATE_HISTORY_LIMIT


TransitionMachine.TestCase.settings = settings(
    max_examples=SCALE.transition_examples,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_no_sequence_of_transitions_leaves_a_terminal_state_without_force = TransitionMachine.TestCase


# Claims raced by threads

CLAIMABLE = {"Scheduled", "Late", "AwaitingRetry"}
STARTING_STATES = {
    "Scheduled": Scheduled,
    "Late": Late,
    "AwaitingRetry": AwaitingRetry,
    "Pending": Pending,
    "Running": Running,
    "Paused": Paused,
    "Cancelling": Cancelling,
    "Completed": Completed,
    "Crashed": Crashed,
}


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads as often as possible, so that claims interleave at every step."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def race(backends: list[Backend], run_id: str, *, meddler: Backend | None = None) -> list[str]:
    """Each backend claims the run in its own thread, all released at once; a meddler
    marks it Late meanwhile (what the scheduler does to an unclaimed run). Returns the
    workers that won."""
    barrier = threading.Barrier(len(backends) + (meddler is not None))
    winners: list[str] = []
    errors: list[BaseException] = []

    def claim(backend: Backend, worker: str) -> None:
        barrier.wait()
        try:
            if claim_flow_run(backend, run_id, worker=worker) is not None:
                winners.append(worker)
        except BaseException as exc:
            errors.append(exc)

    def meddle() -> None:
        assert meddler is not None
        barrier.wait()
        run = meddler.read_flow_run(run_id)
        version = run.version  # before the state (the memory backend's record is live)
        if run.state is not None and run.state.name == "Scheduled":
            with contextlib.suppress(ConflictError, InvalidTransitionError):
                meddler.set_flow_run_state(run_id, Late(), expected_version=version)

    threads = [
        threading.Thread(target=claim, args=(backend, f"worker-{i}"))
        for i, backend in enumerate(backends)
    ]
    if meddler is not None:
        threads.append(threading.Thread(target=meddle))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return winners


def new_run(backend: Backend, start: str) -> FlowRun:
    run = FlowRun(
        id=str(uuid.uuid4()),
        name="contested",
        flow_name="flow",
        deployment_name="contested",
        created=datetime.now(UTC),
        state=STARTING_STATES[start](),
        version=1,
    )
    backend.create_flow_run(run)
    return run


RACE_NUMBERS = st.integers(min_value=0, max_value=2**32)
"""Only makes examples distinct: a race is worth running again with the same inputs, and
hypothesis would stop once it had tried every combination of the others."""

_memory_figures = {"races": 0, "threads": 0}


@settings(max_examples=SCALE.claim_examples, deadline=None)
@given(
    threads=st.integers(min_value=2, max_value=16),
    start=st.sampled_from(sorted(STARTING_STATES)),
    meddle=st.booleans(),
    race_number=RACE_NUMBERS,
)
@pytest.mark.usefixtures("fast_switching")
def test_of_threads_claiming_one_run_at_most_one_wins_on_the_memory_backend(
    threads: int, start: str, meddle: bool, race_number: int
) -> None:
    backend = MemoryBackend()
    run = new_run(backend, start)

    winners = race([backend] * threads, run.id, meddler=backend if meddle else None)

    _memory_figures["races"] += 1
    _memory_figures["threads"] += threads
    record_figures("claims (memory backend)", **_memory_figures)
    assert len(winners) == (1 if start in CLAIMABLE else 0), winners
    stored = backend.read_flow_run(run.id)
    assert stored.state is not None
    if winners:
        assert stored.state.type is StateType.PENDING
        assert stored.state.details["worker"] == winners[0]


_emulator_figures = {"races": 0, "threads": 0}


@settings(
    max_examples=SCALE.emulator_claim_examples,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    threads=st.integers(min_value=2, max_value=6),
    meddle=st.booleans(),
    race_number=RACE_NUMBERS,
)
@pytest.mark.slow
def test_of_clients_claiming_one_run_exactly_one_wins_on_the_emulator(
    stack: Stack, threads: int, meddle: bool, race_number: int
) -> None:
    clients = emulator_clients(threads + 1)
    run = new_run(clients[0], "Scheduled")

    winners = race(clients[1:], run.id, meddler=clients[0] if meddle else None)

    _emulator_figures["races"] += 1
    _emulator_figures["threads"] += threads
    record_figures("claims (emulator)", **_emulator_figures)
    assert len(winners) == 1, winners
    stored = clients[0].read_flow_run(run.id)
    assert stored.state is not None
    assert stored.state.type is StateType.PENDING
    assert stored.state.details["worker"] == winners[0]
    assert stored.version in (2, 3)  # claimed (after a Late, when the meddler won)


_clients: list[AwsBackend] = []


def emulator_clients(count: int) -> list[AwsBackend]:
    """Separate backends (each with its own DynamoDB client and connections), as separate
    workers have; built once for all examples."""
    while len(_clients) < count:
        backend = build_aws_services(load_settings()).backend
        assert isinstance(backend, AwsBackend)
        _clients.append(backend)
    return _clients[:count]
