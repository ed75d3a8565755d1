"""Task cache stores: where cache keys map to persisted results (pluggable)."""

from __future__ import annotations

import base64
import json
import os
import tempfile
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from stratoflow.results import LocalFileSystemResultStore, ResultRecord


@dataclass(frozen=True, slots=True)
class CacheEntry:
    key: str
    result: ResultRecord
    expiration: datetime | None = None
    task_run_id: str | None = None

    def is_expired(self, now: datetime) -> bool:
        return self.expiration is not None and self.expiration <= now


class CacheStore(ABC):
    """Maps a cache key to a result. Expiry is checked on every read."""

    @abstractmethod
    def _read(self, key: str) -> CacheEntry | None: ...

    @abstractmethod
    def put(self, entry: CacheEntry) -> None: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    def get(self, key: str, now: datetime) -> CacheEntry | None:
        """The live entry for `key`, or None when there is none or it has expired."""
        entry = self._read(key)
        if entry is None or entry.is_expired(now):
            return None
        return entry


class MemoryCacheStore(CacheStore):
    def __init__(self) -> None:
        self._entries: dict[str, CacheEntry] = {}
        self._lock = threading.Lock()

    def _read(self, key: str) -> CacheEntry | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, entry: CacheEntry) -> None:
        with self._lock:
            self._entries[entry.key] = entry

    def delete(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)


class LocalFileCacheStore(CacheStore):
    """One JSON file per key in a directory, so separate processes share the cache.

    Entries may only point at local filesystem results.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory).expanduser()

    def _path(self, key: str) -> Path:
        if not key.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"Cache key {key!r} must be letters, digits, '-' or '_'")
        return self.directory / f"{key}.json"

    def _read(self, key: str) -> CacheEntry | None:
        try:
            raw = json.loads(self._path(key).read_text())
        except FileNotFoundError:
            return None
        expiration = raw.get("expiration")
        inline = raw.get("inline")
        return CacheEntry(
            key=key,
            result=ResultRecord(
                store=LocalFileSystemResultStore(raw["store"]) if raw.get("store") else None,
                key=raw["result_key"],
                serializer=raw["serializer"],
                inline=base64.b64decode(inline) if inline is not None else None,
            ),
            expiration=datetime.fromisoformat(expiration) if expiration else None,
            task_run_id=raw.get("task_run_id"),
        )

    def put(self, entry: CacheEntry) -> None:
        store = entry.result.store
        inline = entry.result.inline
        if inline is None and not isinstance(store, LocalFileSystemResultStore):
            raise TypeError(
                "LocalFileCacheStore can only point at results in a LocalFileSystemResultStore; "
                f"got {store!r}. Use a cache store that matches your result storage."
            )
        document = {
            "store": str(store.basepath) if isinstance(store, LocalFileSystemResultStore) else None,
            "inline": base64.b64encode(inline).decode() if inline is not None else None,
            "result_key": entry.result.key,
            "serializer": entry.result.serializer,
            "expiration": entry.expiration.isoformat() if entry.expiration else None,
            "task_run_id": entry.task_run_id,
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle)
        os.replace(tmp, self._path(entry.key))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
