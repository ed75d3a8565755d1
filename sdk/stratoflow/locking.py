"""Lock managers for SERIALIZABLE transactions (as Prefect 3's `prefect.locking`).

A SERIALIZABLE transaction with a key holds that key's lock from its start until it
commits or rolls back, so a second transaction with the same key waits, then sees the
first one's committed record. A lock is held by a `holder` (one per transaction).

- `MemoryLockManager`: threads of one process.
- `FileSystemLockManager`: processes of one machine (a lock file per key).

Across machines (deployed runs on AWS):
`stratoflow.backends.aws.transaction_locks.DynamoLockManager`.
"""

from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path

_POLL_SECONDS = 0.05


class LockManager(ABC):
    @abstractmethod
    def acquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None) -> bool:
        """Wait for the lock on `key`; False when `acquire_timeout` seconds passed first.
        Acquiring a lock the holder already holds succeeds at once."""

    @abstractmethod
    def release_lock(self, key: str, holder: str) -> None:
        """Give the lock back; raises ValueError when `holder` does not hold it."""

    @abstractmethod
    def is_locked(self, key: str) -> bool: ...

    @abstractmethod
    def is_lock_holder(self, key: str, holder: str) -> bool: ...


class MemoryLockManager(LockManager):
    """Locks shared by the threads of this process."""

    def __init__(self) -> None:
        self._holders: dict[str, str] = {}
        self._changed = threading.Condition()

    def acquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None) -> bool:
        deadline = None if acquire_timeout is None else time.monotonic() + acquire_timeout
        with self._changed:
            while self._holders.get(key, holder) != holder:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._changed.wait(remaining)
            self._holders[key] = holder
            return True

    def release_lock(self, key: str, holder: str) -> None:
        with self._changed:
            if self._holders.get(key) != holder:
                raise ValueError(f"Lock on {key!r} is not held by {holder!r}")
            del self._holders[key]
            self._changed.notify_all()

    def is_locked(self, key: str) -> bool:
        with self._changed:
            return key in self._holders

    def is_lock_holder(self, key: str, holder: str) -> bool:
        with self._changed:
            return self._holders.get(key) == holder


class FileSystemLockManager(LockManager):
    """A lock file per key in `lock_files_directory`, created exclusively (O_EXCL), so
    separate processes on this machine share the locks. A process that dies holding a
    lock leaves its file: delete it by hand (stale locks are not broken automatically)."""

    def __init__(self, lock_files_directory: str | os.PathLike[str]) -> None:
        self.lock_files_directory = Path(lock_files_directory).expanduser()

    def _path(self, key: str) -> Path:
        if not key.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ValueError(f"Lock key {key!r} must be letters, digits, '-', '_' or '.'")
        return self.lock_files_directory / f"{key}.lock"

    def acquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None) -> bool:
        path = self._path(key)
        self.lock_files_directory.mkdir(parents=True, exist_ok=True)
        deadline = None if acquire_timeout is None else time.monotonic() + acquire_timeout
        while True:
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if self._holder_of(path) == holder:
                    return True
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                time.sleep(_POLL_SECONDS)
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(holder)
            return True

    def release_lock(self, key: str, holder: str) -> None:
        path = self._path(key)
        if self._holder_of(path) != holder:
            raise ValueError(f"Lock on {key!r} is not held by {holder!r}")
        path.unlink(missing_ok=True)

    def is_locked(self, key: str) -> bool:
        return self._path(key).exists()

    def is_lock_holder(self, key: str, holder: str) -> bool:
        return self._holder_of(self._path(key)) == holder

    @staticmethod
    def _holder_of(path: Path) -> str | None:
        try:
            return path.read_text()
        except FileNotFoundError:
            return None
