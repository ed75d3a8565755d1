"""A worker's local copies of code bundles, which nothing on the worker is trusted to keep.

A flow is arbitrary code running as the worker's user, so it can write anything the
worker can, this cache included: it could plant or change code that a later run of
another deployment would then execute. So the cache holds only zips, named by their
sha256, and every use re-hashes the bytes it is about to extract (in memory: the bytes
hashed are the bytes extracted, with no window in which the file could be swapped). A
copy that does not match its name is discarded and downloaded again. Each run gets its
own fresh directory, extracted from the verified bytes and removed after the run, so
nothing a run writes there outlives it.

Layout, under the cache directory:

    <sha256>.zip             a downloaded bundle (replaced atomically, never edited)
    .<sha256>.*.partial      a download being written (left over only by a killed worker)
    runs/<sha[:12]>-*/       one run's extracted project (removed when the run ends)
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from stratoflow.deployments.bundle_format import MAX_BUNDLE_BYTES, checked_sha, extract_bundle

logger = logging.getLogger("stratoflow.deployments")

RUNS_DIR = "runs"

MAX_ZIP_BYTES = 2 * MAX_BUNDLE_BYTES
"""Largest cached zip read back. A zip of incompressible files is slightly larger than
the files; anything far bigger was not written by us and is not read into memory."""

# No following a planted symlink, no blocking on a planted FIFO.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class BundleCache:
    """Verified zips in `directory`, and per-run extracted copies in `directory/runs/`."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def zip_path(self, sha256: str) -> Path:
        return self.directory / f"{checked_sha(sha256)}.zip"

    def read(self, sha256: str) -> bytes | None:
        """The cached zip's bytes if they hash to `sha256`; None when there is no usable
        copy. A copy that is not a regular file, or does not match, is logged (someone
        changed it after it was downloaded) and left for `write` to replace."""
        path = self.zip_path(sha256)
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as exc:  # ELOOP: a symlink was planted; EACCES: permissions changed
            self._distrust(path, f"it cannot be opened safely ({exc.strerror})")
            return None
        try:
            with os.fdopen(fd, "rb") as file:
                info = os.fstat(file.fileno())
                if not stat.S_ISREG(info.st_mode):
                    self._distrust(path, "it is not a regular file")
                    return None
                if info.st_size > MAX_ZIP_BYTES:
                    self._distrust(path, f"it holds {info.st_size} bytes, more than any bundle")
                    return None
                data = file.read(MAX_ZIP_BYTES + 1)
        except OSError as exc:
            self._distrust(path, f"it cannot be read ({exc.strerror})")
            return None
        actual = hashlib.sha256(data).hexdigest()
        if actual != checked_sha(sha256):
            self._distrust(path, f"its content does not match its address (sha256 {actual})")
            return None
        return data

    def write(self, sha256: str, data: bytes) -> None:
        """Keep verified bytes for the next run: written beside their final name, then
        renamed over it, so readers see a whole file or none. Best effort: a bundle that
        cannot be cached is simply downloaded again next time."""
        path = self.zip_path(sha256)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, partial = tempfile.mkstemp(
                prefix=f".{path.stem}.", suffix=".partial", dir=path.parent
            )
        except OSError as exc:
            logger.warning("Not caching code bundle %s in %s: %s", sha256, self.directory, exc)
            return
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            try:
                os.replace(partial, path)
            except IsADirectoryError:
                # A directory was planted at the zip's name: remove it (without following
                # any symlink inside it) and try once more.
                shutil.rmtree(path)
                os.replace(partial, path)
        except OSError as exc:
            logger.warning("Not caching code bundle %s at %s: %s", sha256, path, exc)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)

    @contextlib.contextmanager
    def run_directory(self, sha256: str, data: bytes) -> Iterator[Path]:
        """A new directory holding the bundle's files, for one run; removed afterwards.

        `data` must be bytes already verified against `sha256`: they are extracted as given.
        """
        runs = self.directory / RUNS_DIR
        runs.mkdir(parents=True, exist_ok=True)
        # mkdtemp: a name no one else holds, created 0700, never an existing directory.
        directory = Path(tempfile.mkdtemp(prefix=f"{checked_sha(sha256)[:12]}-", dir=runs))
        try:
            extract_bundle(data, directory)
            yield directory
        finally:
            # rmtree unlinks symlinks a run may have left rather than following them.
            shutil.rmtree(directory, ignore_errors=True)
            if directory.exists():
                logger.warning("Could not remove %s after its run; it can be deleted", directory)

    def _distrust(self, path: Path, reason: str) -> None:
        logger.warning(
            "Ignoring the cached code bundle %s: %s. It was changed after it was downloaded "
            "(by a flow run on this host, or a disk fault); downloading the bundle again.",
            path,
            reason,
        )
