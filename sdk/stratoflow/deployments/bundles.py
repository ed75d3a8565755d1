"""Code bundles: a project directory as one deterministic, content-addressed zip, stored in
the code bucket and run by workers from a copy verified on every use.

`build_bundle` (bundle_build.py) zips a project. `BundleStore` keeps bundles in the code
bucket at `bundles/<sha256>.zip` (uploading code that is already there sends nothing) and
gives each run its own freshly extracted copy (`checkout`), from a local cache of zips
that is re-hashed before every use (bundle_cache.py says why).

The building names re-exported here (`build_bundle`, `Bundle`, ...) are loaded on first
use (PEP 562): workers only check bundles out, and building one imports `pathspec`
(~10 ms of the Lambda worker's cold start, bench/cold_start.py).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, FlexibleChecksumError

from stratoflow import resources
from stratoflow.deployments.bundle_cache import BundleCache
from stratoflow.deployments.bundle_format import (
    EXECUTABLE_MODE,
    FILE_MODE,
    MAX_BUNDLE_BYTES,
    BundleError,
    BundleNotFound,
    checked_sha,
    extract_bundle,
    human_size,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from stratoflow.deployments.bundle_build import (
        BUILTIN_IGNORES,
        COMPRESSION_LEVEL,
        IGNORE_FILE,
        ZIP_TIMESTAMP,
        Bundle,
        build_bundle,
    )
    from stratoflow.settings import Settings

__all__ = [
    "BUILTIN_IGNORES",
    "COMPRESSION_LEVEL",
    "EXECUTABLE_MODE",
    "FILE_MODE",
    "IGNORE_FILE",
    "MAX_BUNDLE_BYTES",
    "ZIP_TIMESTAMP",
    "Bundle",
    "BundleError",
    "BundleNotFound",
    "BundleRef",
    "BundleStore",
    "build_bundle",
    "bundle_key",
    "default_cache_dir",
    "extract_bundle",
]

_BUILDING = frozenset(
    {
        "BUILTIN_IGNORES",
        "COMPRESSION_LEVEL",
        "IGNORE_FILE",
        "ZIP_TIMESTAMP",
        "Bundle",
        "build_bundle",
    }
)


def __getattr__(name: str) -> Any:
    if name not in _BUILDING:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from stratoflow.deployments import bundle_build  # on first use: see the docstring

    value = getattr(bundle_build, name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


logger = logging.getLogger("stratoflow.deployments")

_MISSING_KEY = ("NoSuchKey", "404", "NotFound")
_REDEPLOY = "Redeploy it (`strato deploy`) to record its code bundle again."


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
    return f"{prefix}{checked_sha(sha256)}.zip"


def default_cache_dir(settings: Settings) -> Path:
    """Where workers keep downloaded bundles: `$STRATOFLOW_HOME/bundles`."""
    return settings.home.expanduser() / "bundles"


class BundleStore:
    """Bundles in the code bucket (`<prefix><sha256>.zip`), their downloaded zips in a
    local cache (`<cache_dir>/<sha256>.zip`) and each run's extracted copy
    (`<cache_dir>/runs/...`, removed after the run)."""

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
        self.cache = BundleCache(self.cache_dir)
        self.prefix = prefix if not prefix or prefix.endswith("/") else f"{prefix}/"

    @classmethod
    def from_settings(cls, s3_client: S3Client, settings: Settings) -> BundleStore:
        """The installation's code bucket, cached under `$STRATOFLOW_HOME/bundles`."""
        return cls(s3_client, settings.code_bucket, cache_dir=default_cache_dir(settings))

    def ref(self, sha256: str) -> BundleRef:
        sha = checked_sha(sha256)
        return BundleRef(bucket=self.bucket, key=bundle_key(sha, self.prefix), sha256=sha)

    def check_ref(self, ref: BundleRef) -> BundleRef:
        """`ref` if it is exactly a bundle's content address in this store's code bucket.

        A deployment item records its bundle's bucket, key and sha256; deployers write it,
        but a worker runs nothing from anywhere else (another bucket, or a key that is not
        named by the sha256 the bytes are checked against). Raises BundleError.
        """
        if ref.bucket != self.bucket:
            raise BundleError(
                f"The deployment's code bundle is in bucket {ref.bucket!r}, not this "
                f"installation's code bucket {self.bucket!r}: refusing to run code from "
                f"another bucket. {_REDEPLOY} If {self.bucket!r} is wrong, set "
                "STRATOFLOW_CODE_BUCKET on the worker to the installation's code bucket."
            )
        try:
            sha = checked_sha(ref.sha256)
        except BundleError:
            raise BundleError(
                f"The deployment's code bundle sha256 {ref.sha256!r} is not 64 hexadecimal "
                f"digits: refusing it. {_REDEPLOY}"
            ) from None
        expected = bundle_key(sha, self.prefix)
        if ref.key != expected:
            raise BundleError(
                f"The deployment's code bundle key {ref.key!r} is not the content address of "
                f"its sha256 (expected {expected!r}): refusing it. {_REDEPLOY}"
            )
        return BundleRef(bucket=ref.bucket, key=expected, sha256=sha)

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
        logger.info("Uploaded code bundle %s (%s)", ref.uri, human_size(bundle.size))
        return ref, True

    def load(self, ref_or_sha: BundleRef | str) -> bytes:
        """The bundle's zip, checked against its sha256: from the local cache when the
        cached copy still matches, otherwise downloaded (and cached for the next run).

        Raises BundleError when the reference is not a content address in this store's
        bucket, or the downloaded bytes do not match it; BundleNotFound when it is missing.
        """
        ref = self._resolve(ref_or_sha)
        cached = self.cache.read(ref.sha256)
        if cached is not None:
            return cached
        data = self._download(ref)
        actual = hashlib.sha256(data).hexdigest()
        if actual != ref.sha256:
            raise BundleError(
                f"The code bundle at {ref.uri} does not match its address: its sha256 is "
                f"{actual}, expected {ref.sha256}. Delete the object and redeploy "
                "(`strato deploy`) to upload it again."
            )
        self.cache.write(ref.sha256, data)
        return data

    @contextlib.contextmanager
    def checkout(self, ref_or_sha: BundleRef | str) -> Iterator[Path]:
        """A fresh directory holding the bundle's project, for one run; removed on exit.

        The files come from bytes verified against the bundle's sha256 just now, so
        nothing an earlier run wrote into the cache is executed, and nothing this run
        writes into its directory outlives it. Concurrent checkouts of one bundle, in
        threads or processes, each get their own directory.
        """
        ref = self._resolve(ref_or_sha)
        data = self.load(ref)
        with self.cache.run_directory(ref.sha256, data) as directory:
            yield directory

    def _resolve(self, ref_or_sha: BundleRef | str) -> BundleRef:
        if isinstance(ref_or_sha, BundleRef):
            return self.check_ref(ref_or_sha)
        return self.ref(ref_or_sha)

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
