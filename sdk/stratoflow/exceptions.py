"""Exceptions raised by stratoflow.

Every error a user can trigger says what went wrong and how to fix it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stratoflow.states import State


class StratoflowError(Exception):
    """Base class for errors raised by stratoflow itself."""


class OptionError(StratoflowError, ValueError):
    """A `@flow` or `@task` option is invalid; raised at decoration time."""


class ParameterValidationError(StratoflowError, TypeError):
    """A flow was called with parameters that do not match its signature or type hints."""


class MissingContextError(StratoflowError, RuntimeError):
    """An API that needs a running flow or task was called outside one."""


class MappingLengthMismatch(StratoflowError, ValueError):
    """`task.map()` received iterables of different lengths."""


class UpstreamTaskError(StratoflowError):
    """A task did not start because an upstream task run did not complete."""


class InvalidTransitionError(StratoflowError):
    """A state change is not allowed by the transition table (and was not forced)."""


class ConflictError(StratoflowError):
    """A write lost an optimistic-concurrency race: someone else changed the run first."""


class ObjectNotFound(StratoflowError, LookupError):
    """A run, result or other object does not exist."""


class ResultNotAvailable(StratoflowError):
    """A state's result was not kept in memory and was not persisted."""


class ResultRefused(ResultNotAvailable):
    """A stored result record that is not read: it points outside the configured result
    store, outside the part of it its run owns, names an unknown serializer, or is a
    pickle whose signature does not verify (docs/security.md)."""


class FlowRunCancelled(BaseException):
    """Raised inside a flow run when cancellation was requested.

    It derives from BaseException so that a user's `except Exception` cannot swallow it.
    """


class TaskRunStopped(BaseException):
    """Raised inside a background task run whose run was changed by someone else while
    its task worker held it: cancelled (it is then Cancelled), or crashed by the sweep
    and handed to another worker. Its engine writes nothing more and stops; `state` is
    the run's state as stored.

    It derives from BaseException so that a user's `except Exception` cannot swallow it.
    """

    def __init__(self, message: str, state: State) -> None:
        super().__init__(message)
        self.state = state


class CancelledRun(StratoflowError):
    """Raised when the result of a cancelled run is requested."""


class CrashedRun(StratoflowError):
    """Raised when the result of a crashed run is requested."""


class FailedRun(StratoflowError):
    """Raised when a failed run's result is requested and no original exception is known."""


class TaskRunTimeoutError(StratoflowError, TimeoutError):
    """A task run exceeded its `timeout_seconds`."""


class FlowRunTimeoutError(StratoflowError, TimeoutError):
    """A flow run exceeded its `timeout_seconds`."""


class ConfigurationError(StratoflowError, ValueError):
    """A combination of settings cannot work, e.g. a SERIALIZABLE transaction with no
    lock manager to serialize it with."""


class ReplayDivergenceError(StratoflowError):
    """A flow run's attempt called other tasks than its earlier attempts at the same
    place: its recorded results cannot be reused (docs/durability.md)."""


class FlowPauseTimeout(StratoflowError, TimeoutError):
    """A paused flow run was not resumed within its timeout."""


class NotPausedError(StratoflowError):
    """A flow run that is not paused cannot be resumed."""


class InvalidRunInput(StratoflowError, ValueError):
    """Input given to resume a flow run does not match what the run waits for; the run
    stays paused."""


class RunInputExists(StratoflowError, ValueError):
    """A flow run input with that key already exists: inputs are written once."""
