"""`LocalFileSystem`: files under a directory of this machine (Prefect 3's block of that
name).

    from stratoflow.filesystems import LocalFileSystem

    LocalFileSystem(basepath="/data/exports").save("exports")   # an operator
    fs = LocalFileSystem.load("exports")                         # a flow
    fs.write_path("2026/orders.json", b"[]")                     # /data/exports/2026/orders.json
    fs.read_path("2026/orders.json")

Every path is taken relative to `basepath` (default: the current directory) and must
stay inside it once `~`, `..` and symlinks are resolved, as in Prefect: anything else is a
ValueError.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from stratoflow._async_dispatch import async_dispatch
from stratoflow.filesystems.base import (
    WritableDeploymentStorage,
    WritableFileSystem,
    copytree_filter,
    read_ignore_patterns,
)

IGNORE_FILE = ".prefectignore"
"""`get_directory` leaves out what the source's ignore file lists (Prefect's file name,
so directories prepared for Prefect keep working)."""


class LocalFileSystem(WritableFileSystem, WritableDeploymentStorage):
    """Store data as a file on a local file system."""

    _block_type_name = "Local File System"
    _description = "Files under a local directory (the base path)."

    basepath: str | None = Field(
        default=None, description="Default local path for this block to write to."
    )

    @field_validator("basepath", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    def _base(self) -> Path:
        # Resolved when used, not when saved: `~` is the home of the process that uses it.
        return Path(self.basepath).expanduser().resolve() if self.basepath else Path.cwd().resolve()

    def _resolve_path(self, path: str | Path | None) -> Path:
        """`path` (relative to the base path, or absolute), resolved; ValueError when it
        is outside the base path."""
        base = self._base()
        if path is None:
            return base
        resolved = Path(path).expanduser()
        if not resolved.is_absolute():
            resolved = base / resolved
        resolved = resolved.resolve()
        if resolved != base and base not in resolved.parents:
            raise ValueError(f"Provided path {resolved} is outside of the base path {base}.")
        return resolved

    # read_path / write_path

    def _read(self, path: str) -> bytes:
        target = self._resolve_path(path)
        if not target.exists():
            raise ValueError(f"Path {target} does not exist.")
        if not target.is_file():
            raise ValueError(f"Path {target} is not a file.")
        return target.read_bytes()

    async def aread_path(self, path: str) -> bytes:
        """The bytes of the file at `path`; see `read_path`."""
        return await asyncio.to_thread(self._read, path)

    @async_dispatch(aread_path)
    def read_path(self, path: str) -> bytes:
        """The bytes of the file at `path` (ValueError when it is missing or not a file)."""
        return self._read(path)

    def _write(self, path: str, content: bytes) -> str:
        target = self._resolve_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and not target.is_file():
            raise ValueError(f"Path {target} already exists and is not a file.")
        target.write_bytes(content)
        return str(target)

    async def awrite_path(self, path: str, content: bytes) -> str:
        """Write `content` to `path`; see `write_path`."""
        return await asyncio.to_thread(self._write, path, content)

    @async_dispatch(awrite_path)
    def write_path(self, path: str, content: bytes) -> str:
        """Write `content` to `path` (its directories are created); returns the file's
        absolute path."""
        return self._write(path, content)

    # get_directory / put_directory

    def _get(self, from_path: str | None, local_path: str | None) -> None:
        source = self._resolve_path(from_path) if from_path else self._base()
        target = Path(local_path).resolve() if local_path else Path.cwd().resolve()
        if source == target:
            return  # copytree would refuse to copy a directory onto itself
        ignore_file = source / IGNORE_FILE
        patterns = read_ignore_patterns(ignore_file) if ignore_file.exists() else None
        shutil.copytree(
            source,
            target,
            dirs_exist_ok=True,
            symlinks=True,
            ignore=copytree_filter(source, patterns, also_skip=target),
        )

    async def aget_directory(
        self, from_path: str | None = None, local_path: str | None = None
    ) -> None:
        """Copy a directory out of the base path; see `get_directory`."""
        await asyncio.to_thread(self._get, from_path, local_path)

    @async_dispatch(aget_directory)
    def get_directory(self, from_path: str | None = None, local_path: str | None = None) -> None:
        """Copy `from_path` (default: the whole base path) to `local_path` (default: the
        current directory), leaving out what the source's `.prefectignore` lists."""
        self._get(from_path, local_path)

    def _put(self, local_path: str | None, to_path: str | None, ignore_file: str | None) -> None:
        destination = self._resolve_path(to_path)
        source = Path(local_path).absolute() if local_path else Path.cwd().resolve()
        if source.resolve() == destination:
            return
        patterns = read_ignore_patterns(ignore_file) if ignore_file else None
        shutil.copytree(
            source,
            destination,
            dirs_exist_ok=True,
            ignore=copytree_filter(source, patterns, also_skip=destination),
        )

    async def aput_directory(
        self,
        local_path: str | None = None,
        to_path: str | None = None,
        ignore_file: str | None = None,
    ) -> None:
        """Copy a directory into the base path; see `put_directory`."""
        await asyncio.to_thread(self._put, local_path, to_path, ignore_file)

    @async_dispatch(aput_directory)
    def put_directory(
        self,
        local_path: str | None = None,
        to_path: str | None = None,
        ignore_file: str | None = None,
    ) -> None:
        """Copy `local_path` (default: the current directory) to `to_path` under the base
        path (default: the base path itself). `ignore_file` names a file of gitignore-style
        patterns of paths to leave out."""
        self._put(local_path, to_path, ignore_file)


__all__ = ["LocalFileSystem"]
