"""The result attribute of flow run, task run and cache items: a key in the configured
results store, confined to the part of it its owner may use.

Workers (so any flow's code) may write their runs' items and cache entries, so a record
read back is untrusted input: it could name another bucket, a `file://` path or another
run's object, and the bytes found there are later unpickled. So a record never names a
store: the reader resolves its key against the store built from settings, and accepts
only keys its owner may write:

- a flow run `F`: `F/...`;
- a task run of flow run `F`: `F/...`, or its own cache entry's result
  (`cache/<its cache key>`, or `<its cache key>` as the previous format wrote it);
- a task run outside a flow: `task-runs/<id>` and below, or its cache entry's result;
- a cache entry `K`: `cache/K` (or `K`, the previous format).

Items also carry `store`, the store's URI (as the previous format did, so that readers
of that version keep working during an upgrade); it is never used to find the bytes,
and a record naming any store but the configured one is refused. A record that is not
accepted is read as a refused record: loading it explains why; the run itself, listings
and other runs are unaffected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import Binary

from stratoflow.result_signing import ResultVerifier
from stratoflow.results import (
    CACHE_RESULTS,
    STORED_SERIALIZERS,
    ResultRecord,
    ResultStore,
    cache_result_key,
    refused_record,
)

TASK_RUNS_OUTSIDE_FLOWS = "task-runs/"
MAX_KEY_LENGTH = 900


@dataclass(frozen=True, slots=True)
class Owner:
    """Who a result record belongs to, and so which keys it may name."""

    description: str
    prefixes: tuple[str, ...] = ()
    exact: tuple[str, ...] = ()

    def allows(self, key: str) -> bool:
        return key in self.exact or any(key.startswith(p) for p in self.prefixes)

    def allowed(self) -> str:
        return ", ".join([*self.exact, *(f"{p}..." for p in self.prefixes)])


def _cache_keys(cache_key: str | None) -> tuple[str, ...]:
    if not cache_key:
        return ()
    # The previous format kept a cached result at `<cache key>`; a key with a slash
    # could reach into a run's folder (`<flow run id>/flow`), so only plain ones count.
    legacy = (cache_key,) if "/" not in cache_key else ()
    return (cache_result_key(cache_key), *legacy)


def _run_folder(flow_run_id: str) -> tuple[str, ...]:
    # A run item named `cache` or `task-runs` (a worker can write any FLOWRUN# item)
    # must not own the shared folders.
    folder = f"{flow_run_id}/"
    return () if folder in (CACHE_RESULTS, TASK_RUNS_OUTSIDE_FLOWS) else (folder,)


def flow_run_owner(flow_run_id: str) -> Owner:
    return Owner(f"Flow run {flow_run_id}", prefixes=_run_folder(flow_run_id))


def task_run_owner(task_run_id: str, flow_run_id: str | None, cache_key: str | None) -> Owner:
    if flow_run_id:
        return Owner(
            f"Task run {task_run_id} of flow run {flow_run_id}",
            prefixes=_run_folder(flow_run_id),
            exact=_cache_keys(cache_key),
        )
    own = f"{TASK_RUNS_OUTSIDE_FLOWS}{task_run_id}"
    return Owner(
        f"Task run {task_run_id}", prefixes=(f"{own}/",), exact=(own, *_cache_keys(cache_key))
    )


def cache_entry_owner(cache_key: str) -> Owner:
    return Owner(f"Cache entry {cache_key}", exact=_cache_keys(cache_key))


def key_problem(key: str) -> str | None:
    """Why `key` is not a plain relative key, or None when it is."""
    if not key or len(key) > MAX_KEY_LENGTH:
        return f"a key of {len(key)} characters"
    if "://" in key or key.startswith("/") or "\\" in key or "\x00" in key:
        return f"{key!r} is a location, not a relative key"
    if any(part in ("", ".", "..") for part in key.split("/")):
        return f"{key!r} has an empty, '.' or '..' part"
    return None


class ResultRefs:
    """Reads result records back from items, into the one store built from settings.
    A pickled record carries `verifier`: it is loaded only if its signature verifies."""

    def __init__(self, store: ResultStore, verifier: ResultVerifier) -> None:
        self.store = store
        self.store_uri = store.uri("")
        self.verifier = verifier

    def from_map(self, raw: Any, owner: Owner) -> ResultRecord | None:
        if not raw:
            return None
        problem = self._problem(raw, owner) if isinstance(raw, Mapping) else "not a record"
        if problem is not None:
            return refused_record(
                f"{owner.description}: its result record does not point into the configured "
                f"results store ({self.store_uri}): {problem}. It was not read, because "
                "loading it could run code chosen by whoever wrote the record. "
                "If the run is yours, run it again to store its result anew; if you did not "
                "expect this, check which workers can write this installation's table."
            )
        inline = raw.get("inline")
        signature = raw.get("signature")
        return ResultRecord(
            store=None if inline is not None else self.store,
            key=str(raw.get("key") or ""),
            serializer=str(raw["serializer"]),
            inline=bytes(inline) if inline is not None else None,
            signature=signature if isinstance(signature, str) else None,
            verifier=self.verifier,
            owner=owner.description,
        )

    def _problem(self, raw: Mapping[str, Any], owner: Owner) -> str | None:
        serializer = raw.get("serializer")
        if serializer not in STORED_SERIALIZERS:
            return (
                f"unknown serializer {str(serializer)[:40]!r} "
                f"(expected one of {', '.join(sorted(STORED_SERIALIZERS))})"
            )
        inline = raw.get("inline")
        if inline is not None:
            if not isinstance(inline, bytes | bytearray | Binary):
                return "its inline data is not binary"
            return None  # inline bytes are in the item itself: there is no location
        store = raw.get("store")
        if store is not None and store != self.store_uri:
            # A task's own result_storage (a local directory, another bucket) lands here
            # too: only the process that wrote it can read it.
            return (
                f"it names the store {str(store)[:200]!r} (a task's own result_storage is "
                "read only by the process that wrote it; use the default result storage "
                "with the AWS backend)"
            )
        key = raw.get("key")
        if not isinstance(key, str):
            return "it has no key"
        problem = key_problem(key)
        if problem is not None:
            return problem
        if not owner.allows(key):
            return f"its key {key[:200]!r} is not one of its own ({owner.allowed()})"
        return None
