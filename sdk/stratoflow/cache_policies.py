"""Cache policies decide a task run's cache key; `+` combines them (as in Prefect 3).

A policy that returns None means "do not cache". A compound policy hashes the keys of
its parts that are not None, and is None when all of them are.

Policies written for Prefect (`compute_key(self, task_ctx, inputs, flow_parameters,
**kwargs)`) work unchanged: subclassing `CachePolicy` adapts that signature.
`configure(key_storage=..., isolation_level=..., lock_manager=...)` returns a copy with
those settings; docs/migrating-from-prefect.md says what each one does here.
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from stratoflow._cache_keys import (
    CacheKeyContext,
    KeyStorage,
    UncacheableInputError,
    adapt_prefect_compute_key,
    cache_store_of,
    coerce_isolation_level,
    coerce_key_storage,
    hash_inputs,
    takes_prefect_arguments,
)
from stratoflow.results import stable_hash

if TYPE_CHECKING:
    from typing import Self

    from stratoflow.cache import CacheStore
    from stratoflow.context import TaskRunContext

__all__ = [
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
    "NONE",
    "NO_CACHE",
    "RUN_ID",
    "TASK_SOURCE",
    "CacheKeyContext",
    "CacheKeyFnPolicy",
    "CachePolicy",
    "CompoundCachePolicy",
    "FlowParameters",
    "Inputs",
    "RunId",
    "TaskSource",
    "UncacheableInputError",
    "cache_key_or_none",
    "cache_store_for",
    "task_input_hash",
]


class CachePolicy:
    key_storage: KeyStorage | None = None
    """Where this policy's cache entries go (None: the services' cache store)."""
    isolation_level: str | None = None
    """Recorded for Prefect compatibility; stratoflow has no transactions (see the docs)."""
    lock_manager: object | None = None
    """Recorded for Prefect compatibility; cache writes are not locked (see the docs)."""
    _prefect_settings: ClassVar[tuple[str, ...]] = (
        "key_storage",
        "isolation_level",
        "lock_manager",
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("compute_key")
        if own is not None and takes_prefect_arguments(own):
            cls.compute_key = adapt_prefect_compute_key(own)  # type: ignore[method-assign]

    def compute_key(self, context: CacheKeyContext) -> str | None:
        raise NotImplementedError

    @classmethod
    def from_cache_key_fn(
        cls, cache_key_fn: Callable[[TaskRunContext, dict[str, Any]], str | None]
    ) -> CacheKeyFnPolicy:
        return CacheKeyFnPolicy(cache_key_fn)

    def configure(
        self,
        key_storage: object = None,
        lock_manager: object = None,
        isolation_level: object = None,
    ) -> Self:
        """A copy with the given settings (those left None keep their current value)."""
        new = copy.copy(self)
        if key_storage is not None:
            object.__setattr__(new, "key_storage", coerce_key_storage(key_storage))
        if lock_manager is not None:
            object.__setattr__(new, "lock_manager", lock_manager)
        if isolation_level is not None:
            object.__setattr__(new, "isolation_level", coerce_isolation_level(isolation_level))
        return new

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        if isinstance(other, _NoCache):
            return self  # adding NONE changes nothing (as in Prefect)
        settings = _merged_settings(self, other)
        combined = CompoundCachePolicy(_merge_inputs((*_parts(self), *_parts(other))))
        for name, value in settings.items():
            object.__setattr__(combined, name, value)
        return combined

    def __sub__(self, name: str) -> CachePolicy:
        """Leave argument `name` out of the key: a no-op for a policy without inputs."""
        if not isinstance(name, str):
            raise TypeError("Only argument names (strings) can be subtracted from a cache policy.")
        return self


def _merged_settings(left: CachePolicy, right: CachePolicy) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for name in CachePolicy._prefect_settings:
        mine, theirs = getattr(left, name), getattr(right, name)
        if mine is not None and theirs is not None and mine != theirs:
            raise ValueError(f"Cannot add cache policies with different {name.replace('_', ' ')}s.")
        merged[name] = mine if mine is not None else theirs
    return merged


def _parts(policy: CachePolicy) -> tuple[CachePolicy, ...]:
    return policy.policies if isinstance(policy, CompoundCachePolicy) else (policy,)


def _merge_inputs(policies: tuple[CachePolicy, ...]) -> tuple[CachePolicy, ...]:
    """One Inputs part at most, excluding what any of them excluded (as Prefect)."""
    inputs = [p for p in policies if isinstance(p, Inputs)]
    if len(inputs) < 2:
        return policies
    merged = Inputs(exclude=frozenset().union(*(p.exclude for p in inputs)))
    others = tuple(p for p in policies if not isinstance(p, Inputs))
    position = policies.index(inputs[0])
    return (*others[:position], merged, *others[position:])


@dataclass(frozen=True)
class CompoundCachePolicy(CachePolicy):
    policies: tuple[CachePolicy, ...]

    def compute_key(self, context: CacheKeyContext) -> str | None:
        keys = [key for p in self.policies if (key := p.compute_key(context)) is not None]
        return stable_hash(*keys) if keys else None

    def __sub__(self, name: str) -> CachePolicy:
        if not isinstance(name, str):
            raise TypeError("Only argument names (strings) can be subtracted from a cache policy.")
        if not any(isinstance(p, Inputs) for p in self.policies):
            return self
        smaller = CompoundCachePolicy(tuple(p - name for p in self.policies))
        for setting in CachePolicy._prefect_settings:
            object.__setattr__(smaller, setting, getattr(self, setting))
        return smaller

    def __repr__(self) -> str:
        return " + ".join(repr(p) for p in self.policies)


@dataclass(frozen=True)
class _NoCache(CachePolicy):
    def compute_key(self, context: CacheKeyContext) -> str | None:
        return None

    def __add__(self, other: CachePolicy) -> CachePolicy:
        return other

    def __repr__(self) -> str:
        return "NONE"


@dataclass(frozen=True)
class Inputs(CachePolicy):
    """The task's inputs (for this task only); `INPUTS - "name"` leaves a parameter out.

    Pydantic models are hashed by their JSON-mode dump; an argument that cannot be
    hashed raises UncacheableInputError (a ValueError) naming it, as in Prefect.
    """

    exclude: frozenset[str] = field(default_factory=frozenset)

    def compute_key(self, context: CacheKeyContext) -> str | None:
        inputs = {k: v for k, v in context.inputs.items() if k not in self.exclude}
        return hash_inputs(context.task_run_context.task.task_key, inputs)

    def __sub__(self, name: str) -> Inputs:
        if not isinstance(name, str):
            raise TypeError("Only argument names (strings) can be subtracted from a cache policy.")
        smaller = copy.copy(self)
        object.__setattr__(smaller, "exclude", self.exclude | {name})
        return smaller

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


def cache_key_or_none(
    policy: CachePolicy,
    context: CacheKeyContext,
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> str | None:
    """The key, or None (no caching) when the policy raises: as in Prefect, a policy or
    `cache_key_fn` that fails is logged with its traceback and the run goes on uncached."""
    try:
        return policy.compute_key(context)
    except Exception:  # user code (a policy, a cache_key_fn) must not fail the run
        logger.exception(
            "Error encountered when computing cache key - result will not be persisted."
        )
        return None


def cache_store_for(policy: CachePolicy, default: CacheStore) -> CacheStore:
    """The cache store of a policy configured with `key_storage`, else `default`."""
    return default if policy.key_storage is None else cache_store_of(policy.key_storage)


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
