"""What cache policies share: hashing task inputs, the settings `configure()` takes, and
running a policy written for Prefect's `compute_key` signature.

Kept apart from `cache_policies.py` so that the policies read as a list of rules.
"""

from __future__ import annotations

import functools
import inspect
import os
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

from stratoflow.cache import CacheStore, LocalFileCacheStore
from stratoflow.results import LocalFileSystemResultStore, ResultStore, stable_hash

if TYPE_CHECKING:
    from stratoflow.context import TaskRunContext

ISOLATION_LEVELS = ("READ_COMMITTED", "SERIALIZABLE")

KeyStorage = CacheStore | ResultStore | Path
"""Where a policy's cache entries go: a cache store, a local result store or a directory."""

_HASH_FAILURES = (TypeError, AttributeError, pickle.PicklingError)
"""What cloudpickle raises for a value it cannot serialize (locks, sockets, files)."""


@dataclass(frozen=True, slots=True)
class CacheKeyContext:
    """What a policy may look at when computing a key."""

    task_run_context: TaskRunContext
    inputs: Mapping[str, Any]
    flow_parameters: Mapping[str, Any]
    flow_run_id: str | None


class UncacheableInputError(ValueError):
    """A task argument that cannot be hashed into a cache key (Prefect raises ValueError)."""


def _stable_form(value: Any) -> Any:
    """`value` with pydantic models replaced by their JSON-mode dump, as Prefect hashes
    them: a model's cloudpickle bytes change with its class's code object, its JSON does
    not. A model whose fields JSON cannot hold stays as it is (hashed by cloudpickle)."""
    if isinstance(value, BaseModel):
        try:
            data = value.model_dump(mode="json")
        except PydanticSerializationError:
            return value
        return {"__class__": f"{type(value).__module__}.{type(value).__qualname__}", "data": data}
    kind = type(value)
    if kind is dict:
        return {k: _stable_form(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return kind(_stable_form(v) for v in value)
    return value


def hash_inputs(task_key: str, inputs: Mapping[str, Any]) -> str:
    """The key of a task's inputs; UncacheableInputError names an argument that cannot
    be hashed and says what to do, as Prefect's INPUTS policy does."""
    stable = {name: _stable_form(value) for name, value in inputs.items()}
    try:
        return stable_hash(task_key, stable)
    except _HASH_FAILURES as exc:
        raise UncacheableInputError(_uncacheable_message(stable, exc)) from exc


def _uncacheable_message(inputs: Mapping[str, Any], exc: BaseException) -> str:
    culprit = next((name for name, value in inputs.items() if not _hashable(value)), None)
    which = f"Task argument {culprit!r}" if culprit else "A task argument"
    return (
        f"{which} cannot be hashed into a cache key: {exc}.\n\n"
        "This often occurs when task inputs contain objects that cannot be cached, like "
        "locks, file handles, or other system resources.\n\n"
        "To resolve this, you can:\n"
        + (f'  - leave it out of the key: cache_policy=INPUTS - "{culprit}"\n' if culprit else "")
        + "  - define a custom `cache_key_fn` that ignores it\n"
        "  - disable caching by passing `cache_policy=NO_CACHE`\n"
    )


def _hashable(value: Any) -> bool:
    try:
        stable_hash(value)
    except _HASH_FAILURES:
        return False
    return True


def coerce_key_storage(value: object) -> KeyStorage:
    """`key_storage=` of `CachePolicy.configure`: a directory path, a local result store
    (its directory) or a cache store."""
    if isinstance(value, CacheStore | ResultStore):
        if isinstance(value, ResultStore) and not isinstance(value, LocalFileSystemResultStore):
            raise TypeError(
                f"key_storage={value!r} is not supported: cache entries can go to a directory "
                "(a path or a LocalFileSystemResultStore) or to a stratoflow.cache.CacheStore."
            )
        return value
    if isinstance(value, str | os.PathLike):
        return Path(value).expanduser()
    raise TypeError(
        f"key_storage must be a directory path, a LocalFileSystemResultStore or a CacheStore, "
        f"got {type(value).__name__}."
    )


def coerce_isolation_level(value: object) -> str:
    """ "READ_COMMITTED" or "SERIALIZABLE" (a string, or an enum member of that value)."""
    level = getattr(value, "value", value)
    if level not in ISOLATION_LEVELS:
        raise ValueError(
            f"isolation_level must be one of {', '.join(ISOLATION_LEVELS)}, got {value!r}."
        )
    return str(level)


def cache_store_of(key_storage: KeyStorage) -> CacheStore:
    if isinstance(key_storage, CacheStore):
        return key_storage
    if isinstance(key_storage, LocalFileSystemResultStore):
        return LocalFileCacheStore(key_storage.basepath)
    assert isinstance(key_storage, Path)
    return LocalFileCacheStore(key_storage)


# Policies written for Prefect


def takes_prefect_arguments(compute_key: Callable[..., Any]) -> bool:
    """Is this `compute_key(self, task_ctx, inputs, flow_parameters, **kwargs)`, Prefect's
    signature, rather than stratoflow's `compute_key(self, context)`?"""
    if getattr(compute_key, "__stratoflow_adapted__", False):
        return False
    try:
        parameters = inspect.signature(compute_key).parameters
    except (TypeError, ValueError):
        return False
    return "task_ctx" in parameters and "inputs" in parameters


def adapt_prefect_compute_key(compute_key: Callable[..., Any]) -> Callable[..., Any]:
    """Let the engine (which passes one CacheKeyContext) call a Prefect-style compute_key."""

    @functools.wraps(compute_key)
    def adapted(self: Any, context: Any = None, *args: Any, **kwargs: Any) -> Any:
        if isinstance(context, CacheKeyContext):
            return compute_key(
                self,
                task_ctx=context.task_run_context,
                inputs=dict(context.inputs),
                flow_parameters=dict(context.flow_parameters),
            )
        if context is not None:
            args = (context, *args)
        return compute_key(self, *args, **kwargs)

    adapted.__stratoflow_adapted__ = True  # type: ignore[attr-defined]
    return adapted
