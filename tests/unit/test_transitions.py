"""The transition table and `apply_transition`: rules, optimistic concurrency,
idempotency and bounded history."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratoflow.exceptions import ConflictError, InvalidTransitionError
from stratoflow.models import STATE_HISTORY_LIMIT, FlowRun, TaskRun
from stratoflow.orchestration.transitions import (
    RECENT_TRANSITION_IDS,
    apply_transition,
    check_transition,
    transition_mark,
    was_applied,
)
from stratoflow.states import (
    TERMINAL_STATES,
    TRANSITIONS,
    Cancelled,
    Cancelling,
    Completed,
    Crashed,
    Failed,
    Paused,
    Pending,
    Running,
    Scheduled,
    State,
    StateType,
    is_allowed_transition,
)

_FACTORIES = {
    StateType.SCHEDULED: Scheduled,
    StateType.PENDING: Pending,
    StateType.RUNNING: Running,
    StateType.COMPLETED: Completed,
    StateType.FAILED: Failed,
    StateType.CANCELLED: Cancelled,
    StateType.CRASHED: Crashed,
    StateType.PAUSED: Paused,
    StateType.CANCELLING: Cancelling,
}
NON_TERMINAL = sorted(set(StateType) - TERMINAL_STATES)
TERMINAL = sorted(TERMINAL_STATES)
TERMINAL_TO_ANY = list(itertools.product(TERMINAL, list(StateType)))


def _state(state_type: StateType) -> State:
    return _FACTORIES[state_type]()


def _run(state: State | None = None) -> FlowRun:
    run = FlowRun(id="run-1", name="run", flow_name="f")
    if state is not None:
        apply_transition(run, state)
    return run


# The table


def test_terminal_states_are_the_four_final_types() -> None:
    assert {
        StateType.COMPLETED,
        StateType.FAILED,
        StateType.CANCELLED,
        StateType.CRASHED,
    } == TERMINAL_STATES
    assert set(TRANSITIONS) == set(StateType)


@pytest.mark.parametrize(("current", "proposed"), TERMINAL_TO_ANY)
def test_terminal_states_cannot_be_left_without_force(
    current: StateType, proposed: StateType
) -> None:
    assert not is_allowed_transition(current, proposed)
    run = _run(_state(current))
    before = run.state
    with pytest.raises(InvalidTransitionError) as info:
        apply_transition(run, _state(proposed))
    message = str(info.value)
    assert f"is already {before.name!r}, a final state" in message  # type: ignore[union-attr]
    assert "Pass force=True to override." in message
    assert run.state is before
    assert run.version == 1


@pytest.mark.parametrize(("current", "proposed"), TERMINAL_TO_ANY)
def test_force_leaves_a_terminal_state(current: StateType, proposed: StateType) -> None:
    run = _run(_state(current))
    new = _state(proposed)
    result = apply_transition(run, new, force=True)
    assert result.applied
    assert run.state is new
    assert run.version == 2


@pytest.mark.parametrize("proposed", list(StateType))
def test_a_new_run_can_take_any_state(proposed: StateType) -> None:
    assert is_allowed_transition(None, proposed)
    run = _run()
    apply_transition(run, _state(proposed))
    assert run.state is not None
    assert run.state.type is proposed
    assert run.state_history == []


@pytest.mark.parametrize("current", NON_TERMINAL)
def test_non_terminal_states_can_reach_a_final_state(current: StateType) -> None:
    reachable = TRANSITIONS[current] & TERMINAL_STATES
    assert StateType.CRASHED in reachable
    assert StateType.FAILED in reachable
    # Same-type moves (renames such as Running -> Retrying) are allowed.
    assert current in TRANSITIONS[current]


@pytest.mark.parametrize(
    ("current", "proposed"),
    [
        (StateType.CANCELLING, StateType.RUNNING),
        (StateType.CANCELLING, StateType.PENDING),
        (StateType.CANCELLING, StateType.SCHEDULED),
        (StateType.SCHEDULED, StateType.COMPLETED),
    ],
)
def test_invalid_non_terminal_transition_message(current: StateType, proposed: StateType) -> None:
    run = _run(_state(current))
    with pytest.raises(InvalidTransitionError) as info:
        apply_transition(run, _state(proposed))
    assert str(info.value) == (
        f"Run run-1 cannot go from {run.state.name!r} ({current}) to "  # type: ignore[union-attr]
        f"{_state(proposed).name!r} ({proposed})."
    )


@pytest.mark.parametrize(
    ("current", "proposed"),
    [
        (StateType.SCHEDULED, StateType.PENDING),
        (StateType.PENDING, StateType.RUNNING),
        (StateType.RUNNING, StateType.COMPLETED),
        (StateType.RUNNING, StateType.SCHEDULED),  # AwaitingRetry
        (StateType.RUNNING, StateType.CANCELLING),
        (StateType.CANCELLING, StateType.CANCELLED),
        (StateType.PAUSED, StateType.RUNNING),
    ],
)
def test_allowed_lifecycle_transitions(current: StateType, proposed: StateType) -> None:
    run = _run(_state(current))
    apply_transition(run, _state(proposed))
    assert run.state.type is proposed  # type: ignore[union-attr]


def test_check_transition_with_force_never_raises() -> None:
    check_transition("r", Completed(), Running(), force=True)
    with pytest.raises(InvalidTransitionError):
        check_transition("r", Completed(), Running())


# apply_transition


def test_apply_transition_moves_state_version_and_history() -> None:
    run = _run()
    pending, running = Pending(), Running()
    first = apply_transition(run, pending)
    second = apply_transition(run, running)
    assert (first.version, first.applied, first.state) == (1, True, pending)
    assert (second.version, second.applied, second.state) == (2, True, running)
    assert run.state is running
    assert run.state_history == [pending]
    assert run.version == 2


def test_expected_version_mismatch_raises_conflict() -> None:
    run = _run(Pending())
    with pytest.raises(ConflictError) as info:
        apply_transition(run, Running(), expected_version=0)
    assert str(info.value) == "Run run-1 changed since version 0 (now version 1, state 'Pending')."
    assert run.state.name == "Pending"  # type: ignore[union-attr]
    assert run.version == 1
    result = apply_transition(run, Running(), expected_version=1)
    assert result.version == 2


def test_repeated_transition_id_is_applied_once() -> None:
    run = _run(Pending())
    first = apply_transition(run, Running(), transition_id="t-1")
    repeated = apply_transition(run, Completed(), transition_id="t-1")
    assert first.applied
    assert not repeated.applied
    assert repeated.state is first.state
    assert repeated.version == first.version == 2
    assert run.state.name == "Running"  # type: ignore[union-attr]
    assert len(run.state_history) == 1


def test_repeated_transition_id_wins_over_a_stale_expected_version() -> None:
    # A retried request whose first attempt was applied gets the stored result, not a
    # conflict.
    run = _run(Pending())
    apply_transition(run, Running(), expected_version=1, transition_id="t-1")
    repeated = apply_transition(run, Running(), expected_version=1, transition_id="t-1")
    assert not repeated.applied
    assert run.version == 2


def test_transition_ids_are_remembered_within_a_bound() -> None:
    run = _run(Pending())
    apply_transition(run, Running(), transition_id="first")
    for i in range(RECENT_TRANSITION_IDS):
        apply_transition(run, Running(name="Retrying"), transition_id=f"later-{i}")
    assert not was_applied(run.recent_transition_ids, "first")
    assert len(run.recent_transition_ids) == RECENT_TRANSITION_IDS
    assert apply_transition(run, Running(), transition_id="first").applied


def test_state_history_is_bounded_to_the_newest_states() -> None:
    run = _run(Pending())
    total = STATE_HISTORY_LIMIT + 10
    for i in range(total):
        apply_transition(run, Running(f"attempt {i}"))
    assert len(run.state_history) == STATE_HISTORY_LIMIT
    assert run.state.message == f"attempt {total - 1}"  # type: ignore[union-attr]
    assert run.state_history[-1].message == f"attempt {total - 2}"
    assert run.state_history[0].message == f"attempt {total - 1 - STATE_HISTORY_LIMIT}"
    assert run.version == total + 1


def test_apply_transition_works_on_task_runs() -> None:
    run = TaskRun(id="t", name="t-0", task_key="k", dynamic_key="0", task_name="t")
    apply_transition(run, Pending())
    apply_transition(run, Running())
    apply_transition(run, Failed("x"))
    with pytest.raises(InvalidTransitionError):
        apply_transition(run, Running())
    assert [s.name for s in run.state_history] == ["Pending", "Running"]


# Property: no sequence of non-forced transitions leaves a terminal state


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list(StateType)), min_size=1, max_size=30))
def test_no_sequence_of_transitions_leaves_a_terminal_state(
    sequence: list[StateType],
) -> None:
    run = _run()
    final: State | None = None
    for proposed in sequence:
        before_state, before_version = run.state, run.version
        allowed = is_allowed_transition(before_state.type if before_state else None, proposed)
        try:
            apply_transition(run, _state(proposed), expected_version=before_version)
        except InvalidTransitionError:
            assert not allowed
            assert run.state is before_state
            assert run.version == before_version
        else:
            assert allowed
            assert final is None, "a terminal state was left"
            assert run.version == before_version + 1
        if run.state is not None and run.state.type in TERMINAL_STATES and final is None:
            final = run.state
        if final is not None:
            assert run.state is final


def test_a_run_keeps_64_bit_marks_of_its_transition_ids() -> None:
    # Marks keep flow-run items under one write unit; a mark maps to itself (items are
    # read back and written again), and ids stored whole before marks still count.
    run = _run(Pending())
    transition_id = "6d723909-b5e9-4301-ad19-51b16055136a"
    apply_transition(run, Running(), transition_id=transition_id)
    (mark,) = run.recent_transition_ids
    assert len(mark) == 16 and transition_mark(mark) == mark
    assert not apply_transition(run, Running(), transition_id=transition_id).applied
    run.recent_transition_ids = ["legacy-full-id"]
    assert was_applied(run.recent_transition_ids, "legacy-full-id")
    assert not apply_transition(run, Completed(), transition_id="legacy-full-id").applied
