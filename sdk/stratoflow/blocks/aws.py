"""AWS blocks: `S3Bucket`, the most used methods of prefect-aws's block of that name.

    from stratoflow.blocks.aws import S3Bucket

    S3Bucket(bucket_name="acme-data", bucket_folder="raw").save("raw-data")   # an operator
    bucket = S3Bucket.load("raw-data")                                         # a flow
    bucket.write_path("2026/12/orders.json", b"[]")
    bucket.download_object_to_path("2026/12/orders.json", "orders.json")

There is no credentials block: calls use the process's own AWS credentials (the worker's
role, or an operator's), with stratoflow's region, endpoint and botocore retry settings.
A worker's role may read and write the bucket only when granted (docs/blocks.md).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import Field

from stratoflow.blocks.core import Block


class S3Bucket(Block):
    """A block that represents an S3 bucket (and a folder in it)."""

    _block_type_name = "S3 Bucket"
    _description = "An S3 bucket, and optionally a folder in it that paths are relative to."

    bucket_name: str = Field(default=..., min_length=3, max_length=63, description="The bucket.")
    bucket_folder: str = Field(
        default="", description="A folder in the bucket that every path is relative to."
    )

    def _client(self) -> Any:
        from stratoflow.backends.aws.clients import AwsClients, AwsConfig
        from stratoflow.settings import get_settings

        return AwsClients(config=AwsConfig.from_settings(get_settings())).s3

    def _key(self, path: str | Path) -> str:
        """`path` under `bucket_folder` (POSIX separators, as S3 keys)."""
        text = PurePosixPath(*Path(path).parts).as_posix() if str(path) else ""
        if not self.bucket_folder:
            return text
        folder = self.bucket_folder.strip("/")
        if text == folder or text.startswith(f"{folder}/"):
            return text  # already in the folder (as prefect-aws does)
        return f"{folder}/{text}" if text else f"{folder}/"

    def read_path(self, path: str) -> bytes:
        """The bytes of the object at `path`."""
        response = self._client().get_object(Bucket=self.bucket_name, Key=self._key(path))
        return response["Body"].read()  # type: ignore[no-any-return]

    def write_path(self, path: str, content: bytes) -> str:
        """Write `content` to `path`; returns the object's key."""
        key = self._key(path)
        self._client().put_object(Bucket=self.bucket_name, Key=key, Body=content)
        return key

    def upload_from_path(
        self, from_path: str | Path, to_path: str | None = None, **upload_kwargs: Any
    ) -> str:
        """Upload a local file (to `to_path`, else its file name); returns the key."""
        source = Path(from_path).absolute()
        key = self._key(to_path if to_path is not None else source.name)
        self._client().upload_file(
            Filename=str(source), Bucket=self.bucket_name, Key=key, **upload_kwargs
        )
        return key

    def download_object_to_path(
        self, from_path: str, to_path: str | Path | None = None, **download_kwargs: Any
    ) -> Path:
        """Download an object to a local file (`to_path`, else its name in the current
        directory); returns the file's absolute path."""
        target = Path(to_path if to_path is not None else PurePosixPath(from_path).name).absolute()
        self._client().download_file(
            Bucket=self.bucket_name,
            Key=self._key(from_path),
            Filename=str(target),
            **download_kwargs,
        )
        return target


__all__ = ["S3Bucket"]
