"""The abstract file system blocks of Prefect 3 (`prefect.filesystems`), and the
gitignore-style filtering their `put_directory` / `get_directory` share.

Prefect declares these methods `async`; here they are synchronous, and the concrete
blocks give each an async twin (`aread_path`, ...) and return a coroutine when called
from async code, as Prefect's concrete blocks do.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path

import pathspec
import pathspec.util

from stratoflow.blocks.core import Block


class ReadableFileSystem(Block, abc.ABC):
    """A block that reads files: `read_path(path) -> bytes`."""

    @abc.abstractmethod
    def read_path(self, path: str) -> bytes: ...


class WritableFileSystem(Block, abc.ABC):
    """A block that reads and writes files: `read_path`, `write_path`."""

    @abc.abstractmethod
    def read_path(self, path: str) -> bytes: ...

    @abc.abstractmethod
    def write_path(self, path: str, content: bytes) -> str: ...


class ReadableDeploymentStorage(Block, abc.ABC):
    """A block that copies a directory out of it: `get_directory`."""

    @abc.abstractmethod
    def get_directory(
        self, from_path: str | None = None, local_path: str | None = None
    ) -> None: ...


class WritableDeploymentStorage(Block, abc.ABC):
    """A block that copies directories in and out: `get_directory`, `put_directory`."""

    @abc.abstractmethod
    def get_directory(
        self, from_path: str | None = None, local_path: str | None = None
    ) -> None: ...

    @abc.abstractmethod
    def put_directory(
        self,
        local_path: str | None = None,
        to_path: str | None = None,
        ignore_file: str | None = None,
    ) -> object: ...


def read_ignore_patterns(ignore_file: str | Path) -> list[str]:
    """The lines of an ignore file (gitignore syntax), as Prefect reads them."""
    with open(ignore_file, encoding="utf-8") as handle:
        return handle.readlines()


def included_paths(root: str | Path, ignore_patterns: list[str]) -> set[str]:
    """The paths under `root` (relative, files and directories) that `ignore_patterns`
    leave in, with the parent directories of every file left in: Prefect's
    `filter_files(root, patterns, include_dirs=True)`."""
    spec = pathspec.GitIgnoreSpec.from_lines(ignore_patterns)
    ignored = {entry.path for entry in spec.match_tree_entries(root)}
    included = {entry.path for entry in pathspec.util.iter_tree_entries(root)} - ignored
    parents: set[str] = set()
    for path in included:
        for parent in Path(path).parents:
            if str(parent) == ".":
                break
            parents.add(str(parent))
    return included | parents


def copytree_filter(
    root: Path, ignore_patterns: list[str] | None, *, also_skip: Path | None = None
) -> Callable[[str, list[str]], list[str]]:
    """A `shutil.copytree` `ignore=` function: copies only the `included_paths` of
    `ignore_patterns` (everything when None), and never `also_skip` (a resolved
    directory: a destination inside the source would otherwise be copied into itself)."""
    included = included_paths(root, ignore_patterns) if ignore_patterns is not None else None

    def ignore(directory: str, names: list[str]) -> list[str]:
        relative = Path(directory).relative_to(root)
        return [
            name
            for name in names
            if (included is not None and str(relative / name) not in included)
            or (also_skip is not None and (Path(directory) / name).resolve() == also_skip)
        ]

    return ignore


__all__ = [
    "ReadableDeploymentStorage",
    "ReadableFileSystem",
    "WritableDeploymentStorage",
    "WritableFileSystem",
]
