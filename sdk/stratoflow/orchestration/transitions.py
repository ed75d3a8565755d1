"""The one place where a run's state changes (DESIGN §3).

`apply_transition` enforces the transition table, optimistic concurrency on `version`
and idempotency by client transition id. Backends call it (the memory backend on its
records; the AWS backend mirrors it as DynamoDB condition expressions).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from stratoflow.exceptions import ConflictError, InvalidTransitionError
from stratoflow.models import STATE_HISTORY_LIMIT
from stratoflow.states import TERMINAL_STATES, State, StateType, is_allowed_transition

RECENT_TRANSITION_IDS = 8
_MARK = re.compile(r"[0-9a-f]{16}")


def transition_mark(transition_id: str) -> str:
    """What a run keeps of a transition id: 64 bits (16 hex characters) instead of a
    36-character UUID, which keeps flow-run items under the 1 KB of one write unit. Marks
    only tell a retried request from a new one among a run's last few transitions, where
    a 64-bit collision is out of reach. A mark maps to itself (items store marks and read
    them back)."""
    if _MARK.fullmatch(transition_id):
        return transition_id
    return hashlib.blake2b(transition_id.encode(), digest_size=8).hexdigest()


def was_applied(recent: Sequence[str], transition_id: str) -> bool:
    """Whether `transition_id` is among a run's recent transitions (as a mark, or whole in
    a run written before marks)."""
    return transition_mark(transition_id) in recent or transition_id in recent


class StatefulRun(Protocol):
    id: str
    state: State | None
    state_history: list[State]
    version: int
    recent_transition_ids: list[str]


@dataclass(frozen=True, slots=True)
class TransitionResult:
    state: State
    version: int
    applied: bool
    """False when the transition id had been applied before (a retried request)."""


def check_transition(
    run_id: str, current: State | None, proposed: State, *, force: bool = False
) -> None:
    """Raise InvalidTransitionError when `current -> proposed` is not allowed."""
    if force:
        return
    current_type: StateType | None = current.type if current else None
    if is_allowed_transition(current_type, proposed.type):
        return
    current_name = current.name if current else None
    if current_type in TERMINAL_STATES:
        raise InvalidTransitionError(
            f"Run {run_id} is already {current_name!r}, a final state; it cannot move to "
            f"{proposed.name!r}. Pass force=True to override."
        )
    raise InvalidTransitionError(
        f"Run {run_id} cannot go from {current_name!r} ({current_type}) to "
        f"{proposed.name!r} ({proposed.type})."
    )


def apply_transition(
    run: StatefulRun,
    proposed: State,
    *,
    expected_version: int | None = None,
    transition_id: str | None = None,
    force: bool = False,
) -> TransitionResult:
    """Move `run` to `proposed` in place. The caller holds whatever lock guards `run`."""
    if transition_id is not None and was_applied(run.recent_transition_ids, transition_id):
        assert run.state is not None
        return TransitionResult(state=run.state, version=run.version, applied=False)
    if expected_version is not None and expected_version != run.version:
        raise ConflictError(
            f"Run {run.id} changed since version {expected_version} "
            f"(now version {run.version}, state {run.state.name if run.state else None!r})."
        )
    check_transition(run.id, run.state, proposed, force=force)
    if run.state is not None:
        history = run.state_history
        history.append(run.state)
        if len(history) > STATE_HISTORY_LIMIT:
            del history[0]
    run.state = proposed
    run.version += 1
    if transition_id is not None:
        ids = run.recent_transition_ids
        ids.append(transition_mark(transition_id))
        if len(ids) > RECENT_TRANSITION_IDS:
            del ids[0]
    return TransitionResult(state=proposed, version=run.version, applied=True)
