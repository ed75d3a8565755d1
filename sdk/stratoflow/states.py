"""State types, named states and the transition table (DESIGN §3).

`State` is a small slotted dataclass: the engine creates several per task run, so it
must be cheap. Pydantic models are used at the boundaries, not here.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

from stratoflow.exceptions import (
    CancelledRun,
    CrashedRun,
    FailedRun,
    ResultNotAvailable,
)

if TYPE_CHECKING:
    from stratoflow.results import ResultRecord


class StateType(enum.StrEnum):
    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"
    PAUSED = "PAUSED"
    CANCELLING = "CANCELLING"


TERMINAL_STATES: frozenset[StateType] = frozenset(
    {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED}
)

_S = StateType
# from-type -> allowed to-types (without force). Same-type transitions are allowed so
# that a state can be renamed (Running -> Retrying is RUNNING -> RUNNING).
TRANSITIONS: Mapping[StateType, frozenset[StateType]] = {
    _S.SCHEDULED: frozenset(
        {
            _S.SCHEDULED,
            _S.PENDING,
            _S.RUNNING,
            _S.CANCELLING,
            _S.CANCELLED,
            _S.CRASHED,
            _S.FAILED,
            _S.PAUSED,
        }
    ),
    _S.PENDING: frozenset(
        {
            _S.PENDING,
            _S.RUNNING,
            _S.SCHEDULED,
            _S.COMPLETED,
            _S.FAILED,
            _S.CANCELLING,
            _S.CANCELLED,
            _S.CRASHED,
            _S.PAUSED,
        }
    ),
    _S.RUNNING: frozenset(
        {
            _S.RUNNING,
            _S.COMPLETED,
            _S.FAILED,
            _S.SCHEDULED,
            _S.CANCELLING,
            _S.CANCELLED,
            _S.CRASHED,
            _S.PAUSED,
        }
    ),
    _S.PAUSED: frozenset(
        {
            _S.PAUSED,
            _S.SCHEDULED,
            _S.PENDING,
            _S.RUNNING,
            _S.CANCELLING,
            _S.CANCELLED,
            _S.CRASHED,
            _S.FAILED,
        }
    ),
    _S.CANCELLING: frozenset({_S.CANCELLING, _S.CANCELLED, _S.CRASHED, _S.FAILED, _S.COMPLETED}),
    _S.COMPLETED: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.CRASHED: frozenset(),
}


def is_allowed_transition(from_type: StateType | None, to_type: StateType) -> bool:
    """True when `from_type -> to_type` is allowed without force. None means "no state yet"."""
    if from_type is None:
        return True
    return to_type in TRANSITIONS[from_type]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class State:
    """The state of a flow run or task run at one moment.

    `data` holds the in-memory result (or the exception of a failed run); `result_record`
    points at a persisted result when there is one.
    """

    type: StateType
    name: str
    message: str | None = None
    timestamp: datetime = field(default_factory=_now)
    data: Any = None
    result_record: ResultRecord | None = None
    has_data: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def is_scheduled(self) -> bool:
        return self.type is StateType.SCHEDULED

    def is_pending(self) -> bool:
        return self.type is StateType.PENDING

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_cancelling(self) -> bool:
        return self.type is StateType.CANCELLING

    def is_paused(self) -> bool:
        return self.type is StateType.PAUSED

    def is_final(self) -> bool:
        return self.type in TERMINAL_STATES

    def result(self, raise_on_failure: bool = True) -> Any:
        """The run's return value.

        For a failed, crashed or cancelled run it raises the run's exception (as Prefect's
        `get_state_exception` finds it); with `raise_on_failure=False` it returns the
        state's data, or that exception when the state has no data (as Prefect does).
        """
        if self.type is StateType.COMPLETED:
            return self._value()
        if self.type in (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED):
            if raise_on_failure:
                raise self._exception()
            if self.has_data or self.result_record is not None:
                return self._value()
            return self._exception()
        raise ResultNotAvailable(
            f"The run is in state {self.name!r} ({self.type}); its result is available once "
            "it is Completed. Wait for the run (future.wait()) before asking for the result."
        )

    def _value(self) -> Any:
        if self.has_data:
            return self.data
        if self.result_record is not None:
            return self.result_record.load()
        return None

    def _exception(self) -> BaseException:
        """The exception a failed, crashed or cancelled state stands for: its data when
        that is an exception; for a state (or list of states) the run returned, the
        first failed one's; otherwise a FailedRun/CrashedRun/CancelledRun."""
        data = self._value() if self.has_data or self.result_record is not None else None
        if isinstance(data, BaseException):
            return data
        if isinstance(data, State):
            return data._exception()
        if is_state_iterable(data):
            for state in data:
                if state.type in (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED):
                    return state._exception()
            return ValueError("Failed state result was an iterable of states but none were failed.")
        wrapper, default_message = _EXCEPTION_WRAPPERS.get(self.type, _FAILED_WRAPPER)
        if data is None:
            return wrapper(self.message or default_message)
        if isinstance(data, str):
            return wrapper(data)
        return TypeError(
            f"Unexpected result for failed state: {data!r} —— "
            f"{type(data).__name__} cannot be resolved into an exception"
        )

    def copy(self, **changes: Any) -> State:
        return replace(self, **changes)

    def __repr__(self) -> str:
        return f"{self.name}({self.message!r})" if self.message else f"{self.name}()"

    def __str__(self) -> str:
        """Prefect's form, used in "Finished in state ..." lines: `Completed()`,
        `Failed('message')`, `Cached(type=COMPLETED)`."""
        shown = [repr(self.message)] if self.message else []
        if self.name.lower() != self.type.value.lower():
            shown.append(f"type={self.type.value}")
        return f"{self.name}({', '.join(shown)})"


_FAILED_WRAPPER: tuple[type[Exception], str] = (FailedRun, "Run failed.")
_EXCEPTION_WRAPPERS: Mapping[StateType, tuple[type[Exception], str]] = {
    StateType.FAILED: _FAILED_WRAPPER,
    StateType.CRASHED: (CrashedRun, "Run crashed."),
    StateType.CANCELLED: (CancelledRun, "Run cancelled."),
}


def is_state_iterable(value: object) -> TypeGuard[Iterable[State]]:
    """A non-empty list, tuple or set made only of states (Prefect's rule: other
    containers, such as dicts, never count)."""
    if isinstance(value, list | tuple | set) and value:
        return all(isinstance(item, State) for item in value)
    return False


class StateFactory(Protocol):
    def __call__(
        self,
        message: str | None = None,
        *,
        name: str | None = None,
        data: Any = None,
        **details: Any,
    ) -> State: ...


def _named(state_type: StateType, default_name: str) -> StateFactory:
    def make(
        message: str | None = None,
        *,
        name: str | None = None,
        data: Any = None,
        **details: Any,
    ) -> State:
        return State(
            type=state_type,
            name=name or default_name,
            message=message,
            data=data,
            has_data=data is not None,
            details=details,
        )

    make.__name__ = default_name
    make.__doc__ = f"A {state_type.value} state named {default_name!r}."
    return make


Scheduled = _named(StateType.SCHEDULED, "Scheduled")
Late = _named(StateType.SCHEDULED, "Late")
AwaitingRetry = _named(StateType.SCHEDULED, "AwaitingRetry")
Pending = _named(StateType.PENDING, "Pending")
AwaitingConcurrencySlot = _named(StateType.PENDING, "AwaitingConcurrencySlot")
Running = _named(StateType.RUNNING, "Running")
Retrying = _named(StateType.RUNNING, "Retrying")
Completed = _named(StateType.COMPLETED, "Completed")
Cached = _named(StateType.COMPLETED, "Cached")
Failed = _named(StateType.FAILED, "Failed")
TimedOut = _named(StateType.FAILED, "TimedOut")
NotReady = _named(StateType.FAILED, "NotReady")
Crashed = _named(StateType.CRASHED, "Crashed")
Cancelled = _named(StateType.CANCELLED, "Cancelled")
Cancelling = _named(StateType.CANCELLING, "Cancelling")
Paused = _named(StateType.PAUSED, "Paused")
Suspended = _named(StateType.PAUSED, "Suspended")
"""Paused without holding compute: the run continues in a new attempt once resumed."""
Resuming = _named(StateType.SCHEDULED, "Resuming")
Sleeping = _named(StateType.SCHEDULED, "Sleeping")
"""A deployed run waiting for its durable `stratoflow.sleep` to end, without compute."""
HandedBack = _named(StateType.SCHEDULED, "HandedBack")
"""A run that stopped at the end of its worker's time budget, to continue at once."""
