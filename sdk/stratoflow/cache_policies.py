"""Cache policies decide a task run's cache key; `+` combines them (as in Prefect 3).

A policy that returns None means "do not cache". A compound policy hashes the keys of
its parts that are not None, and is None when all of them are.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stratoflow.results import stable_hash

if TYPE_CHECKING:
    from stratoflow.context import TaskRunContext


@dataclass(frozen=True, slots=True)
class CacheKeyContext:
    """What a policy may look at when computing a key."""

    task_run_context: TaskRunContext
    inputs: Mapping[str, Any]
    flow_parameters: Mapping[str, Any]
    flow_run_id: str | None


class CachePolicy:
    def compute_key(self, context: CacheKeyContext) -> str | None:
        raise NotImplementedError

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        return CompoundCachePolicy((*_parts(self), *_parts(other)))


def _parts(policy: CachePolicy) -> tuple[CachePolicy, ...]:
    return policy.policies if isinstance(policy, CompoundCachePolicy) else (policy,)


@dataclass(frozen=True)
class CompoundCachePolicy(CachePolicy):
    policies: tuple[CachePolicy, ...]

    def compute_key(self, context: CacheKeyContext) -> str | None:
        keys = [key for p in self.policies if (key := p.compute_key(context)) is not None]
        return stable_hash(*keys) if keys else None

    def __repr__(self) -> str:
        return " + ".join(repr(p) for p in self.policies)


@dataclass(frozen=True)
class _NoCache(CachePolicy):
    def compute_key(self, context: CacheKeyContext) -> str | None:
        return None

    def __repr__(self) -> str:
        return "NONE"


@dataclass(frozen=True)
class Inputs(CachePolicy):
    """The task's inputs (for this task only); `INPUTS - "name"` leaves a parameter out."""

    exclude: frozenset[str] = field(default_factory=frozenset)

    def compute_key(self, context: CacheKeyContext) -> str | None:
        inputs = {k: v for k, v in context.inputs.items() if k not in self.exclude}
        return stable_hash(context.task_run_context.task.task_key, inputs)

    def __sub__(self, name: str) -> Inputs:
        return Inputs(exclude=self.exclude | {name})

    def __repr__(self) -> str:
        return f"INPUTS - {sorted(self.exclude)}" if self.exclude else "INPUTS"


@dataclass(frozen=True)
class TaskSource(CachePolicy):
    """The source code of the task function: editing the task invalidates the cache."""

    def compute_key(self, context: CacheKeyContext) -> str | None:
        return source_hash(context.task_run_context.task.fn)

    def __repr__(self) -> str:
        return "TASK_SOURCE"


@dataclass(frozen=True)
class FlowParameters(CachePolicy):
    def compute_key(self, context: CacheKeyContext) -> str | None:
        return stable_hash(dict(context.flow_parameters))

    def __repr__(self) -> str:
        return "FLOW_PARAMETERS"


@dataclass(frozen=True)
class RunId(CachePolicy):
    def compute_key(self, context: CacheKeyContext) -> str | None:
        return context.flow_run_id

    def __repr__(self) -> str:
        return "RUN_ID"


@dataclass(frozen=True)
class CacheKeyFnPolicy(CachePolicy):
    """Wraps a user's `cache_key_fn(context, parameters) -> str | None`."""

    cache_key_fn: Callable[[TaskRunContext, dict[str, Any]], str | None]

    def compute_key(self, context: CacheKeyContext) -> str | None:
        key = self.cache_key_fn(context.task_run_context, dict(context.inputs))
        return None if key is None else stable_hash(str(key))


_source_hashes: dict[Callable[..., Any], str] = {}


def source_hash(fn: Callable[..., Any]) -> str:
    cached = _source_hashes.get(fn)
    if cached is None:
        try:
            source: Any = inspect.getsource(fn)
        except (OSError, TypeError):
            code = getattr(fn, "__code__", None)
            source = code.co_code.hex() if code is not None else repr(fn)
        cached = _source_hashes[fn] = stable_hash(source)
    return cached


def task_input_hash(context: TaskRunContext, arguments: dict[str, Any]) -> str | None:
    """A `cache_key_fn` that hashes the task's identity, code and arguments."""
    return stable_hash(context.task.task_key, source_hash(context.task.fn), arguments)


NONE: CachePolicy = _NoCache()
NO_CACHE = NONE
INPUTS = Inputs()
TASK_SOURCE = TaskSource()
FLOW_PARAMETERS = FlowParameters()
RUN_ID = RunId()
DEFAULT: CachePolicy = INPUTS + TASK_SOURCE + RUN_ID
