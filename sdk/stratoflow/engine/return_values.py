"""The state a run ends in, from what its function returned (Prefect's
`return_value_to_state`).

- A state the user made (not one of a run: no run id in its details) is the final
  state, as given.
- A run's state, or a non-empty list, tuple or set made only of states, decides by the
  aggregate rule: Completed when all completed, else Cancelled when any was cancelled,
  else Failed ("1/2 states failed."); the returned value is the new state's data.
- Anything else (a mix of states and values included) is Completed with that data; a
  generator is consumed into a list for the state's data.

The engines persist the data afterwards; a flow turns returned futures into states
before this (`resolve_futures_to_states`).
"""

from __future__ import annotations

import types
from collections import Counter
from typing import Any

from stratoflow.states import State, StateType, is_state_iterable

_RUN_ID_KEYS = ("flow_run_id", "task_run_id")


def is_user_state(value: object) -> bool:
    """A state made by the user's code (`return Failed(...)`), not one of a run."""
    return isinstance(value, State) and not any(key in value.details for key in _RUN_ID_KEYS)


def decides_state(value: object) -> bool:
    """True when `value` (a state, or a collection of only states) sets the final state;
    otherwise the run is Completed with `value` as its data."""
    return isinstance(value, State) or is_state_iterable(value)


def return_value_to_state(value: Any) -> State:
    """The final state for a returned `value`, its data in memory (`has_data`)."""
    if not decides_state(value):
        return completed_with(value)
    if is_user_state(value):
        assert isinstance(value, State)
        return value
    states: list[State] = [value] if isinstance(value, State) else list(value)
    return _aggregate(states, value)


def completed_with(value: Any) -> State:
    """The Completed state for a returned `value` that does not decide the state (see
    `decides_state`): what `return_value_to_state` gives for it, without checking."""
    if isinstance(value, types.GeneratorType):
        # Generators are not portable: the state keeps the values they yield.
        value = list(value)
    return State(type=StateType.COMPLETED, name="Completed", data=value, has_data=True)


def _aggregate(states: list[State], returned: Any) -> State:
    counts = Counter(state.type for state in states)
    total = len(states)
    failed = counts[StateType.FAILED] + counts[StateType.CRASHED]
    if counts[StateType.COMPLETED] == total:
        return _with_data(StateType.COMPLETED, "Completed", "All states completed.", returned)
    if counts[StateType.CANCELLED]:
        message = f"{counts[StateType.CANCELLED]}/{total} states cancelled."
        return _with_data(StateType.CANCELLED, "Cancelled", message, returned)
    if failed:
        message = f"{failed}/{total} states failed."
    else:
        not_final = sum(not state.is_final() for state in states)
        message = f"{not_final}/{total} states are not final."
    return _with_data(StateType.FAILED, "Failed", message, returned)


def _with_data(state_type: StateType, name: str, message: str | None, data: Any) -> State:
    return State(type=state_type, name=name, message=message, data=data, has_data=True)
