"""Code bundles: a project directory as one deterministic, content-addressed zip.

`build_bundle` zips a project's files so that the same files always give the same bytes
(sorted paths, fixed timestamps and permissions, fixed compression level); the bundle's
name is the sha256 of those bytes. `BundleStore` keeps bundles in the code bucket at
`bundles/<sha256>.zip`: uploading code that is already there sends nothing, and workers
download a bundle once into `<cache_dir>/<sha256>/`.

What is bundled: every regular file under the project directory, except the built-in
ignores (`BUILTIN_IGNORES`) and the patterns of the project's `.stratoflowignore`
(gitignore syntax). A `.gitignore` is NOT read: list what to leave out in
`.stratoflowignore`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pathspec
from botocore.exceptions import ClientError, FlexibleChecksumError

from stratoflow import resources
from stratoflow.exceptions import ObjectNotFound, StratoflowError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from stratoflow.settings import Settings

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

MAX_BUNDLE_BYTES = 250 * 1024 * 1024
"""Largest total size of a bundle's files (uncompressed), as AWS Lambda's unzipped limit."""

ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
COMPRESSION_LEVEL = 6
FILE_MODE = 0o644
EXECUTABLE_MODE = 0o755

_UNIX = 3  # ZipInfo.create_system: permissions in external_attr are Unix modes
_MISSING_KEY = ("NoSuchKey", "404", "NotFound")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_BUILTIN_SPEC = pathspec.GitIgnoreSpec.from_lines(BUILTIN_IGNORES)


class BundleError(StratoflowError):
    """A code bundle cannot be built, uploaded, downloaded or extracted."""


class BundleNotFound(BundleError, ObjectNotFound):
    """The code bucket has no bundle with the requested sha256."""


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
class BundleRef:
    """Where a bundle lives: `s3://<bucket>/bundles/<sha256>.zip`."""

    bucket: str
    key: str
    sha256: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def bundle_key(sha256: str, prefix: str = resources.CODE_PREFIX) -> str:
    return f"{prefix}{_checked_sha(sha256)}.zip"


def default_cache_dir(settings: Settings) -> Path:
    """Where workers keep extracted bundles: `$STRATOFLOW_HOME/bundles`."""
    return settings.home.expanduser() / "bundles"


# Building


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
    listing = ", ".join(f"{f.path} ({_human(f.size)})" for f in biggest)
    raise BundleError(
        f"The code bundle of {project} would hold {_human(total)} of files, over the "
        f"{_human(MAX_BUNDLE_BYTES)} limit. Biggest files: {listing}. Leave out data, "
        f"environments and build output by listing them in {project / IGNORE_FILE}."
    )


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


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


# Extracting


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
                f"The code bundle would extract to {_human(total)}, over the "
                f"{_human(MAX_BUNDLE_BYTES)} limit"
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


# Storage


class BundleStore:
    """Bundles in the code bucket (`<prefix><sha256>.zip`) and their extracted copies in a
    local cache (`<cache_dir>/<sha256>/`)."""

    def __init__(
        self,
        s3_client: S3Client,
        bucket: str,
        *,
        cache_dir: Path,
        prefix: str = resources.CODE_PREFIX,
    ) -> None:
        self.client = s3_client
        self.bucket = bucket
        self.cache_dir = Path(cache_dir)
        self.prefix = prefix if not prefix or prefix.endswith("/") else f"{prefix}/"

    @classmethod
    def from_settings(cls, s3_client: S3Client, settings: Settings) -> BundleStore:
        """The installation's code bucket, cached under `$STRATOFLOW_HOME/bundles`."""
        return cls(s3_client, settings.code_bucket, cache_dir=default_cache_dir(settings))

    def ref(self, sha256: str) -> BundleRef:
        sha = _checked_sha(sha256)
        return BundleRef(bucket=self.bucket, key=bundle_key(sha, self.prefix), sha256=sha)

    def upload(self, bundle: Bundle) -> tuple[BundleRef, bool]:
        """Store the bundle unless the bucket has it already; returns (ref, uploaded)."""
        digest = hashlib.sha256(bundle.data).digest()
        if digest.hex() != bundle.sha256:
            raise BundleError(
                f"Bundle {bundle.sha256} does not match its data (sha256 {digest.hex()})"
            )
        ref = self.ref(bundle.sha256)
        existing = self._head(ref)
        if existing is not None:
            if existing.get("sha256") == ref.sha256:
                logger.debug("Code bundle %s is already stored", ref.uri)
                return ref, False
            logger.warning("Replacing %s: its metadata does not name its sha256", ref.uri)
        try:
            self.client.put_object(
                Bucket=ref.bucket,
                Key=ref.key,
                Body=bundle.data,
                ChecksumSHA256=base64.b64encode(digest).decode("ascii"),
                Metadata={"sha256": ref.sha256},
                ContentType="application/zip",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                raise self._no_bucket(ref) from None
            raise
        logger.info("Uploaded code bundle %s (%s)", ref.uri, _human(bundle.size))
        return ref, True

    def fetch(self, ref_or_sha: BundleRef | str) -> Path:
        """The bundle's extracted project directory, `<cache_dir>/<sha256>/`; downloaded and
        extracted only if that directory does not exist yet.

        The directory appears complete or not at all (extracted beside it, then renamed),
        so concurrent fetches of one bundle, in threads or processes, are safe.
        """
        ref = ref_or_sha if isinstance(ref_or_sha, BundleRef) else self.ref(ref_or_sha)
        sha = _checked_sha(ref.sha256)
        target = self.cache_dir / sha
        if target.is_dir():
            return target
        data = self._download(ref)
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha:
            raise BundleError(
                f"The code bundle at {ref.uri} is corrupted: its sha256 is {actual}, expected "
                f"{sha}. Delete the object and redeploy (`strato deploy`) to upload it again."
            )
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{sha}.", suffix=".partial", dir=self.cache_dir))
        try:
            extract_bundle(data, staging)
            try:
                os.rename(staging, target)
            except OSError:
                if not target.is_dir():
                    raise
                # Someone else extracted the same bundle first; theirs is identical.
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return target

    def _head(self, ref: BundleRef) -> dict[str, str] | None:
        """The object's metadata, or None when there is no object."""
        try:
            response = self.client.head_object(Bucket=ref.bucket, Key=ref.key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in _MISSING_KEY:
                return None
            if code == "NoSuchBucket":
                raise self._no_bucket(ref) from None
            raise
        return dict(response.get("Metadata", {}))

    def _download(self, ref: BundleRef) -> bytes:
        try:
            response = self.client.get_object(Bucket=ref.bucket, Key=ref.key)
            return response["Body"].read()
        except FlexibleChecksumError as exc:
            raise BundleError(
                f"The code bundle at {ref.uri} is corrupted ({exc}). Delete the object and "
                "redeploy (`strato deploy`) to upload it again."
            ) from exc
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in _MISSING_KEY or code == "NoSuchBucket":
                raise BundleNotFound(
                    f"No code bundle at {ref.uri} (bucket {ref.bucket!r}, key {ref.key!r}): "
                    "the deployment's code is missing from the code bucket. Redeploy "
                    "(`strato deploy`) to upload it again."
                ) from None
            raise

    @staticmethod
    def _no_bucket(ref: BundleRef) -> BundleError:
        return BundleError(
            f"The code bucket {ref.bucket!r} does not exist. Provision the stratoflow "
            "resources first, or set STRATOFLOW_CODE_BUCKET to the installation's bucket."
        )

    def __repr__(self) -> str:
        return f"BundleStore('s3://{self.bucket}/{self.prefix}', cache_dir={self.cache_dir!r})"


def _checked_sha(sha256: str) -> str:
    """A sha256 in lower-case hex (it names a cache directory: nothing else may pass)."""
    sha = sha256.lower()
    if not _SHA256.fullmatch(sha):
        raise BundleError(f"{sha256!r} is not a bundle sha256 (64 hexadecimal digits)")
    return sha
