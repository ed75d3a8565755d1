"""File systems: Prefect 3's `prefect.filesystems` blocks (docs/blocks.md).

    from stratoflow.filesystems import LocalFileSystem, RemoteFileSystem

    LocalFileSystem(basepath="/data").save("data")
    RemoteFileSystem(basepath="s3://acme-data/exports").save("exports")
    RemoteFileSystem.load("exports").write_path("orders.json", b"[]")

`RemoteFileSystem` supports the `s3` scheme only (boto3, no fsspec).
"""

from __future__ import annotations

from stratoflow.filesystems.base import (
    ReadableDeploymentStorage,
    ReadableFileSystem,
    WritableDeploymentStorage,
    WritableFileSystem,
)
from stratoflow.filesystems.local import LocalFileSystem
from stratoflow.filesystems.remote import RemoteFileSystem

__all__ = [
    "LocalFileSystem",
    "ReadableDeploymentStorage",
    "ReadableFileSystem",
    "RemoteFileSystem",
    "WritableDeploymentStorage",
    "WritableFileSystem",
]
