"""What a code bundle is, shared by building, storing and running one: its errors, size
limit, file modes, sha256 names, and safe extraction of its zip."""

from __future__ import annotations

import io
import re
import shutil
import stat
import zipfile
import zlib
from pathlib import Path

from stratoflow.exceptions import ObjectNotFound, StratoflowError

MAX_BUNDLE_BYTES = 250 * 1024 * 1024
"""Largest total size of a bundle's files (uncompressed), as AWS Lambda's unzipped limit."""

FILE_MODE = 0o644
EXECUTABLE_MODE = 0o755

_SHA256 = re.compile(r"[0-9a-f]{64}")


class BundleError(StratoflowError):
    """A code bundle cannot be built, uploaded, downloaded, verified or extracted."""


class BundleNotFound(BundleError, ObjectNotFound):
    """The code bucket has no bundle with the requested sha256."""


def checked_sha(sha256: str) -> str:
    """A sha256 in lower-case hex (it names cache files and S3 keys: nothing else may pass)."""
    sha = sha256.lower()
    if not _SHA256.fullmatch(sha):
        raise BundleError(f"{sha256!r} is not a bundle sha256 (64 hexadecimal digits)")
    return sha


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def extract_bundle(data: bytes, destination: Path) -> None:
    """Extract a bundle's files into `destination` (an existing, empty directory).

    Every entry is checked before anything is written: absolute paths, `..` components and
    symlink entries are refused (BundleError), as are archives whose files add up to more
    than MAX_BUNDLE_BYTES.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise BundleError(f"The code bundle is not a valid zip file: {exc}") from exc
    with archive:
        members = archive.infolist()
        total = sum(member.file_size for member in members)
        if total > MAX_BUNDLE_BYTES:
            raise BundleError(
                f"The code bundle would extract to {human_size(total)}, over the "
                f"{human_size(MAX_BUNDLE_BYTES)} limit"
            )
        plan = [(member, _member_parts(member)) for member in members]
        try:
            for member, parts in plan:
                target = destination.joinpath(*parts)
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out, 1024 * 1024)
                if (member.external_attr >> 16) & 0o111:
                    target.chmod(EXECUTABLE_MODE)
        except (OSError, zipfile.BadZipFile, zlib.error) as exc:
            raise BundleError(f"Cannot extract the code bundle: {exc}") from exc


def _member_parts(member: zipfile.ZipInfo) -> tuple[str, ...]:
    """The path components of a zip entry, refusing entries that would escape."""
    name = member.filename
    pieces = re.split(r"[\\/]", name)  # either separator, whatever this platform uses
    if (
        not name
        or "\x00" in name
        or name.startswith(("/", "\\"))
        or re.match(r"[A-Za-z]:", name)
        or ".." in pieces
    ):
        raise BundleError(
            f"Refusing to extract the code bundle: entry {name!r} would be written outside "
            "the bundle's directory (absolute path or '..')"
        )
    if stat.S_ISLNK(member.external_attr >> 16):
        raise BundleError(f"Refusing to extract the code bundle: entry {name!r} is a symlink")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if not parts:
        raise BundleError(f"Refusing to extract the code bundle: entry {name!r} has no name")
    return parts
