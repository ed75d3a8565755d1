"""Building a code bundle: a project directory as one deterministic, content-addressed zip.

`build_bundle` zips a project's files so that the same files always give the same bytes
(sorted paths, fixed timestamps and permissions, fixed compression level); the bundle's
name is the sha256 of those bytes.

What is bundled: every regular file under the project directory, except the built-in
ignores (`BUILTIN_IGNORES`) and the patterns of the project's `.stratoflowignore`
(gitignore syntax). A `.gitignore` is NOT read: list what to leave out in
`.stratoflowignore`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from stratoflow.deployments.bundle_format import (
    EXECUTABLE_MODE,
    FILE_MODE,
    MAX_BUNDLE_BYTES,
    BundleError,
    human_size,
)

logger = logging.getLogger("stratoflow.deployments")

IGNORE_FILE = ".stratoflowignore"
"""Per-project ignore patterns, gitignore syntax. `.gitignore` is not used."""

BUILTIN_IGNORES: tuple[str, ...] = (
    ".git/",
    "__pycache__/",
    "*.pyc",
    ".venv/",
    "venv/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    "node_modules/",
    "cdk.out/",
    ".stratoflow/",
    "*.egg-info/",
)
"""Always left out, whatever the ignore file says (a `!` pattern cannot bring them back)."""

ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
COMPRESSION_LEVEL = 6

_UNIX = 3  # ZipInfo.create_system: permissions in external_attr are Unix modes
_BUILTIN_SPEC = pathspec.GitIgnoreSpec.from_lines(BUILTIN_IGNORES)


@dataclass(frozen=True, repr=False)
class Bundle:
    """A project's files as one zip. `files` are POSIX paths relative to the project,
    sorted; `skipped` are paths that were not bundled (symlinks pointing outside the
    project, broken symlinks, symlink loops, special files), each logged with its reason."""

    sha256: str
    data: bytes
    files: tuple[str, ...]
    skipped: tuple[str, ...] = field(default=())

    @property
    def size(self) -> int:
        """Size of the zip in bytes."""
        return len(self.data)

    def __repr__(self) -> str:
        return f"Bundle(sha256={self.sha256!r}, files={len(self.files)}, size={self.size})"


@dataclass(frozen=True)
class _File:
    path: str  # POSIX path inside the bundle
    source: Path  # the file read (a symlink's target)
    size: int
    executable: bool


def build_bundle(project_dir: Path) -> Bundle:
    """Zip the project's files, deterministically: the same files give the same bytes.

    Raises BundleError when the directory does not exist, holds no file once ignores are
    applied, or its files add up to more than MAX_BUNDLE_BYTES.
    """
    given = Path(project_dir).expanduser()
    if not given.exists():
        raise BundleError(f"Cannot bundle {given}: the directory does not exist")
    if not given.is_dir():
        raise BundleError(f"Cannot bundle {given}: it is not a directory")
    root = given.resolve()
    walker = _Walker(root, _load_ignore_file(root))
    walker.walk(root, "", frozenset({root}))
    files = sorted(walker.files, key=lambda f: f.path)
    if not files:
        raise BundleError(
            f"Nothing to bundle in {given}: no file is left once the built-in ignores and "
            f"{IGNORE_FILE} are applied"
        )
    _check_size(given, files)
    data = _zip(files)
    return Bundle(
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
        files=tuple(f.path for f in files),
        skipped=tuple(sorted(walker.skipped)),
    )


def _load_ignore_file(root: Path) -> pathspec.GitIgnoreSpec | None:
    path = root / IGNORE_FILE
    if not path.is_file():
        return None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        return pathspec.GitIgnoreSpec.from_lines(lines)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"Cannot read the ignore patterns in {path}: {exc}") from exc


class _Walker:
    """Collects the files to bundle, directory by directory, pruning ignored directories.

    Every directory walked is a real path (the root is resolved, and symlinked directories
    are walked at their resolved target), so `chain` — the real directories from the root
    down to the current one — detects symlink loops.
    """

    def __init__(self, root: Path, spec: pathspec.GitIgnoreSpec | None) -> None:
        self.root = root
        self.spec = spec
        self.files: list[_File] = []
        self.skipped: list[str] = []

    def ignored(self, rel: str) -> bool:
        """`rel` is a POSIX path relative to the root, ending in `/` for a directory."""
        if _BUILTIN_SPEC.match_file(rel):
            return True
        return self.spec is not None and self.spec.match_file(rel)

    def skip(self, rel: str, reason: str) -> None:
        self.skipped.append(rel)
        logger.warning("Not bundling %s: %s", rel, reason)

    def walk(self, directory: Path, prefix: str, chain: frozenset[Path]) -> None:
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as exc:
            raise BundleError(f"Cannot read {directory}: {exc}") from exc
        for entry in entries:
            rel = prefix + entry.name
            path = Path(entry.path)
            if entry.is_symlink():
                self._symlink(path, rel, chain)
            elif entry.is_dir(follow_symlinks=False):
                if not self.ignored(f"{rel}/"):
                    self.walk(path, f"{rel}/", chain | {path})
            elif entry.is_file(follow_symlinks=False):
                if not self.ignored(rel):
                    self._add(rel, path)
            elif not self.ignored(rel):
                self.skip(rel, "not a regular file")

    def _symlink(self, link: Path, rel: str, chain: frozenset[Path]) -> None:
        try:
            target = link.resolve(strict=True)
        except (OSError, RuntimeError):  # missing target, or a loop of links
            if not self.ignored(rel):
                self.skip(rel, f"broken symlink (to {os.readlink(link)})")
            return
        is_dir = target.is_dir()
        if self.ignored(f"{rel}/" if is_dir else rel):
            return
        if not target.is_relative_to(self.root):
            self.skip(rel, f"symlink to {target}, outside the project")
        elif is_dir:
            if target in chain:
                self.skip(rel, f"symlink loop (to {target})")
            else:
                self.walk(target, f"{rel}/", chain | {target})
        elif target.is_file():
            self._add(rel, target)
        else:
            self.skip(rel, f"symlink to {target}, not a regular file")

    def _add(self, rel: str, source: Path) -> None:
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            self.skip(rel, "its name is not valid UTF-8")
            return
        info = source.stat()
        self.files.append(_File(rel, source, info.st_size, executable=bool(info.st_mode & 0o111)))


def _check_size(project: Path, files: list[_File]) -> None:
    total = sum(f.size for f in files)
    if total <= MAX_BUNDLE_BYTES:
        return
    biggest = sorted(files, key=lambda f: (-f.size, f.path))[:5]
    listing = ", ".join(f"{f.path} ({human_size(f.size)})" for f in biggest)
    raise BundleError(
        f"The code bundle of {project} would hold {human_size(total)} of files, over the "
        f"{human_size(MAX_BUNDLE_BYTES)} limit. Biggest files: {listing}. Leave out data, "
        f"environments and build output by listing them in {project / IGNORE_FILE}."
    )


def _zip(files: list[_File]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in files:
            info = zipfile.ZipInfo(file.path, date_time=ZIP_TIMESTAMP)
            info.create_system = _UNIX
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = EXECUTABLE_MODE if file.executable else FILE_MODE
            info.external_attr = (stat.S_IFREG | mode) << 16
            try:
                content = file.source.read_bytes()
            except OSError as exc:
                raise BundleError(f"Cannot read {file.source} to bundle it: {exc}") from exc
            archive.writestr(info, content, compresslevel=COMPRESSION_LEVEL)
    return buffer.getvalue()
