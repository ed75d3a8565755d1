"""`RemoteFileSystem`: files under an S3 prefix (Prefect 3's block of that name, for the
`s3` scheme only).

    from stratoflow.filesystems import RemoteFileSystem

    RemoteFileSystem(basepath="s3://acme-data/exports").save("exports")   # an operator
    fs = RemoteFileSystem.load("exports")                                  # a flow
    fs.write_path("2026/orders.json", b"[]")    # s3://acme-data/exports/2026/orders.json

Prefect's block reaches any fsspec file system; this one calls S3 with boto3 (stratoflow
does not depend on fsspec), with the process's own AWS credentials (the worker's role, or
an operator's) and stratoflow's region, endpoint and botocore retry settings, like
`stratoflow.blocks.aws.S3Bucket`. Every key must stay under the base path's prefix: a path
with a `..` segment, or an `s3://` path in another bucket or outside the prefix, is a
ValueError (objects listed by `get_directory` too, since anyone who may write the bucket
chooses their keys).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import unquote, urlsplit

from pydantic import Field, PrivateAttr, field_validator

from stratoflow._async_dispatch import async_dispatch
from stratoflow.filesystems.base import (
    WritableDeploymentStorage,
    WritableFileSystem,
    included_paths,
    read_ignore_patterns,
)

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_s3 import S3Client

SUPPORTED_SCHEMES = ("s3",)
CLIENT_SETTINGS = frozenset({"endpoint_url", "region_name"})
"""The `settings` keys taken (at the top level or in `client_kwargs`, as s3fs takes them):
where to reach S3. Credentials are never settings here."""


class RemoteFileSystem(WritableFileSystem, WritableDeploymentStorage):
    """Store data as a file on a remote file system (in stratoflow: S3)."""

    _block_type_name = "Remote File System"
    _description = "Files under an S3 prefix (s3://bucket/folder)."

    basepath: str = Field(
        default=...,
        description="Default path for this block to write to.",
        examples=["s3://my-bucket/my-folder/"],
    )
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Where to reach S3: `endpoint_url`, `region_name` (also in "
        "`client_kwargs`, as s3fs takes them).",
    )

    _client: Any = PrivateAttr(None)

    @field_validator("basepath")
    @classmethod
    def _check_basepath(cls, value: str) -> str:
        scheme, netloc, path, _, _ = urlsplit(value)
        if not scheme:
            raise ValueError(f"Base path must start with a scheme. Got {value!r}.")
        if scheme == "file":
            raise ValueError(
                "Base path scheme cannot be 'file'. Use `LocalFileSystem` instead for local "
                "file access."
            )
        if not netloc:
            raise ValueError(f"Base path must include a location after the scheme. Got {value!r}.")
        if scheme.lower() not in SUPPORTED_SCHEMES:
            raise ValueError(
                f"stratoflow's RemoteFileSystem supports S3 only (it calls S3 with boto3, not "
                f"fsspec), so base paths must start with s3://, e.g. 's3://my-bucket/folder'; "
                f"got scheme {scheme!r} in {value!r}. Use LocalFileSystem for local files; "
                "other remote file systems have no counterpart."
            )
        if _has_parent_segment(path):
            raise ValueError(f"Base path {value!r} must not contain '..'.")
        return value

    @field_validator("settings")
    @classmethod
    def _check_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        nested = value.get("client_kwargs", {})
        if not isinstance(nested, dict):
            raise ValueError("settings['client_kwargs'] must be a dict")
        unknown = sorted(
            ({*value} - CLIENT_SETTINGS - {"client_kwargs"}) | ({*nested} - CLIENT_SETTINGS)
        )
        if unknown:
            raise ValueError(
                f"RemoteFileSystem settings {unknown} are not supported: stratoflow calls S3 "
                "with boto3 and the process's own AWS credentials (the worker's role, or "
                "yours), so credentials are never block settings. Only "
                f"{sorted(CLIENT_SETTINGS)} are taken (at the top level or in "
                "'client_kwargs'); remove the others."
            )
        return value

    # Clients

    def with_client(self, client: S3Client) -> Self:
        """Use `client` for this block's S3 calls (tests, a client of your own)."""
        self._client = client
        return self

    def with_session(self, session: boto3.Session) -> Self:
        """Make this block's S3 client from `session` (with stratoflow's settings)."""
        self._client = self._make_client(session)
        return self

    def _s3(self) -> S3Client:
        if self._client is None:
            self._client = self._make_client(None)
        return self._client  # type: ignore[no-any-return]

    def _make_client(self, session: boto3.Session | None) -> S3Client:
        # Imported on first use: boto3 costs a fraction of a second to import, and a block
        # is often only saved or loaded.
        from stratoflow.backends.aws.clients import AwsClients, AwsConfig
        from stratoflow.settings import get_settings

        config = AwsConfig.from_settings(get_settings())
        given = {**self.settings, **self.settings.get("client_kwargs", {})}
        if given.get("endpoint_url"):
            config = dataclasses.replace(config, endpoint_url=given["endpoint_url"])
        if given.get("region_name"):
            config = dataclasses.replace(config, region=given["region_name"])
        return AwsClients(session=session, config=config).s3

    # Paths

    def _bucket_and_prefix(self) -> tuple[str, str]:
        _, bucket, path, _, _ = urlsplit(self.basepath)
        return bucket, path.strip("/")

    def _resolve_key(self, path: str | None) -> str:
        """The S3 key of `path` (relative to the base path, or an `s3://` URL inside it);
        ValueError when it is outside the base path."""
        bucket, prefix = self._bucket_and_prefix()
        if not path:
            return prefix
        if "://" in path:
            scheme, _, rest = path.partition("://")
            if scheme.lower() not in SUPPORTED_SCHEMES:
                raise ValueError(
                    f"Path {path!r} with scheme {scheme!r} must use the same scheme as the "
                    f"base path {self.basepath!r}."
                )
            other_bucket, _, key = rest.partition("/")
            key = key.strip("/")
            inside = not prefix or key == prefix or key.startswith(f"{prefix}/")
            if other_bucket != bucket or not inside:
                raise ValueError(f"Path {path!r} is outside of the base path {self.basepath!r}.")
        else:
            relative = path.lstrip("/")
            key = f"{prefix}/{relative}" if prefix else relative
        if _has_parent_segment(key):
            raise ValueError(f"Path {path!r} is outside of the base path {self.basepath!r}.")
        return key

    def _url(self, key: str) -> str:
        bucket, _ = self._bucket_and_prefix()
        return f"s3://{bucket}/{key}"

    # read_path / write_path

    def _read(self, path: str) -> bytes:
        bucket, _ = self._bucket_and_prefix()
        key = self._resolve_key(path)
        s3 = self._s3()
        try:
            response = s3.get_object(Bucket=bucket, Key=key)
        except s3.exceptions.ClientError as exc:  # the client's own: botocore not imported here
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(f"{self._url(key)} does not exist.") from None
            raise
        return response["Body"].read()

    async def aread_path(self, path: str) -> bytes:
        """The bytes of the object at `path`; see `read_path`."""
        return await asyncio.to_thread(self._read, path)

    @async_dispatch(aread_path)
    def read_path(self, path: str) -> bytes:
        """The bytes of the object at `path` (FileNotFoundError when there is none)."""
        return self._read(path)

    def _write(self, path: str, content: bytes) -> str:
        bucket, _ = self._bucket_and_prefix()
        key = self._resolve_key(path)
        self._s3().put_object(Bucket=bucket, Key=key, Body=content)
        return self._url(key)

    async def awrite_path(self, path: str, content: bytes) -> str:
        """Write `content` to `path`; see `write_path`."""
        return await asyncio.to_thread(self._write, path, content)

    @async_dispatch(awrite_path)
    def write_path(self, path: str, content: bytes) -> str:
        """Write `content` to the object at `path`; returns its `s3://` URL."""
        return self._write(path, content)

    # get_directory / put_directory

    def _get(self, from_path: str | None, local_path: str | None) -> None:
        bucket, _ = self._bucket_and_prefix()
        key = self._resolve_key(from_path)
        listing_prefix = f"{key}/" if key else ""
        target = Path(local_path).resolve() if local_path else Path.cwd().resolve()
        pages = (
            self._s3()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=bucket, Prefix=listing_prefix)
        )
        for page in pages:
            for item in page.get("Contents", []):
                relative = item["Key"][len(listing_prefix) :]
                if not relative or relative.endswith("/"):
                    continue  # the folder markers consoles create
                destination = (target / relative).resolve()
                if _has_parent_segment(relative) or target not in destination.parents:
                    raise ValueError(
                        f"Object {self._url(item['Key'])} would be written outside {target}: "
                        "its key has '..' or absolute parts. Rename or delete it."
                    )
                destination.parent.mkdir(parents=True, exist_ok=True)
                self._s3().download_file(bucket, item["Key"], str(destination))

    async def aget_directory(
        self, from_path: str | None = None, local_path: str | None = None
    ) -> None:
        """Download a folder; see `get_directory`."""
        await asyncio.to_thread(self._get, from_path, local_path)

    @async_dispatch(aget_directory)
    def get_directory(self, from_path: str | None = None, local_path: str | None = None) -> None:
        """Download every object under `from_path` (default: the base path) into
        `local_path` (default: the current directory), keeping their relative paths."""
        self._get(from_path, local_path)

    def _put(
        self,
        local_path: str | None,
        to_path: str | None,
        ignore_file: str | None,
        overwrite: bool,
    ) -> int:
        bucket, _ = self._bucket_and_prefix()
        prefix = self._resolve_key(to_path)
        source = Path(local_path) if local_path else Path(".")
        included = (
            included_paths(source, read_ignore_patterns(ignore_file)) if ignore_file else None
        )
        count = 0
        for file in sorted(source.rglob("*")):
            relative = file.relative_to(source)
            if (included is not None and str(relative) not in included) or file.is_dir():
                continue
            key = f"{prefix}/{relative.as_posix()}" if prefix else relative.as_posix()
            if not overwrite and self._exists(bucket, key):
                continue
            self._s3().upload_file(str(file), bucket, key)
            count += 1
        return count

    def _exists(self, bucket: str, key: str) -> bool:
        s3 = self._s3()
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    async def aput_directory(
        self,
        local_path: str | None = None,
        to_path: str | None = None,
        ignore_file: str | None = None,
        overwrite: bool = True,
    ) -> int:
        """Upload a directory; see `put_directory`."""
        return await asyncio.to_thread(self._put, local_path, to_path, ignore_file, overwrite)

    @async_dispatch(aput_directory)
    def put_directory(
        self,
        local_path: str | None = None,
        to_path: str | None = None,
        ignore_file: str | None = None,
        overwrite: bool = True,
    ) -> int:
        """Upload the files of `local_path` (default: the current directory) under
        `to_path` (default: the base path), leaving out what `ignore_file` (gitignore-style
        patterns) lists; returns how many were uploaded. With `overwrite=False` an object
        that exists is left as it is (and not counted)."""
        return self._put(local_path, to_path, ignore_file, overwrite)


def _has_parent_segment(key: str) -> bool:
    """Whether `key` has a `..` segment, also spelled `%2e%2e` or with backslashes."""
    return ".." in unquote(key).replace("\\", "/").split("/")


__all__ = ["RemoteFileSystem"]
