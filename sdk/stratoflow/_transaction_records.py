"""A keyed transaction's record: a cache entry under its key, in the cache store (the
task cache's namespace, as Prefect's transaction records share the result store)."""

from __future__ import annotations

from typing import Any

from stratoflow.cache import CacheEntry, CacheStore
from stratoflow.context import Services
from stratoflow.results import ResultRecord, cache_result_key, persist


def read_record(store: CacheStore, key: str, services: Services) -> ResultRecord | None:
    entry = store.get(key, services.clock.now())
    return entry.result if entry is not None else None


def write_record(store: CacheStore, key: str, staged: Any, services: Services) -> None:
    """Write what the transaction staged: a task run's cache entry as it is (its result
    is stored already), any other value persisted like a cached result."""
    if isinstance(staged, CacheEntry):
        store.put(staged)
        return
    record = persist(
        staged,
        services.result_store,
        key=cache_result_key(key),
        inline_max_bytes=services.inline_result_max_bytes,
        pickle_allowed=services.pickle_results,
        signer=services.result_signer,
    )
    store.put(CacheEntry(key=key, result=record))
