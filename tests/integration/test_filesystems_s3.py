"""`RemoteFileSystem` on S3 (moto): read/write, directories, keys that would escape, and
the client it builds from stratoflow's settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stratoflow.filesystems import RemoteFileSystem
from stratoflow.settings import get_settings
from stratoflow.testing import stratoflow_test_harness

BUCKET = "acme-data"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in list(os.environ):
        if name.startswith(("STRATOFLOW_", "AWS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    get_settings.cache_clear()
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client
    get_settings.cache_clear()


def keys(client: Any, prefix: str = "") -> set[str]:
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {item["Key"] for item in listed}


def test_write_and_read_under_the_prefix(s3: Any) -> None:
    fs = RemoteFileSystem(basepath=f"s3://{BUCKET}/exports/").with_client(s3)
    assert fs.write_path("2026/orders.json", b"[1]") == f"s3://{BUCKET}/exports/2026/orders.json"
    assert fs.read_path("2026/orders.json") == b"[1]"
    assert fs.read_path(f"s3://{BUCKET}/exports/2026/orders.json") == b"[1]"
    assert keys(s3) == {"exports/2026/orders.json"}
    with pytest.raises(FileNotFoundError, match=f"s3://{BUCKET}/exports/missing.json"):
        fs.read_path("missing.json")
    with pytest.raises(ValueError, match="outside of the base path"):
        fs.write_path("../escape.json", b"x")
    assert keys(s3) == {"exports/2026/orders.json"}


def test_put_directory_then_get_directory(s3: Any, tmp_path: Path) -> None:
    src = tmp_path / "src"
    for name in ("etl.py", "lib/util.py", "lib/util.pyc", "build/out.bin"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(name)
    ignore = tmp_path / ".prefectignore"
    ignore.write_text("*.pyc\nbuild/\n")
    fs = RemoteFileSystem(basepath=f"s3://{BUCKET}/code").with_client(s3)
    assert fs.put_directory(local_path=str(src), to_path="v1", ignore_file=str(ignore)) == 2
    assert keys(s3) == {"code/v1/etl.py", "code/v1/lib/util.py"}

    (src / "etl.py").write_text("changed")
    assert fs.put_directory(local_path=str(src), to_path="v1", overwrite=False) == 2  # new ones
    assert s3.get_object(Bucket=BUCKET, Key="code/v1/etl.py")["Body"].read() == b"etl.py"

    s3.put_object(Bucket=BUCKET, Key="code/v1/folder/", Body=b"")  # a console's folder marker
    out = tmp_path / "out"
    fs.get_directory(from_path="v1", local_path=str(out))
    found = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert found == {"etl.py", "lib/util.py", "lib/util.pyc", "build/out.bin"}
    assert (out / "etl.py").read_text() == "etl.py"


def test_get_directory_refuses_keys_that_would_escape(s3: Any, tmp_path: Path) -> None:
    # Whoever may write the bucket chooses its keys: one with `..` must not land outside.
    s3.put_object(Bucket=BUCKET, Key="code/a/../../../evil.txt", Body=b"x")
    fs = RemoteFileSystem(basepath=f"s3://{BUCKET}/code").with_client(s3)
    out = tmp_path / "deep" / "out"
    with pytest.raises(ValueError, match="would be written outside"):
        fs.get_directory(local_path=str(out))
    assert not list(tmp_path.rglob("evil.txt"))


def test_a_saved_block_builds_its_client_from_the_settings(s3: Any) -> None:
    with stratoflow_test_harness():
        RemoteFileSystem(basepath=f"s3://{BUCKET}/exports").save("exports")
        fs = RemoteFileSystem.load("exports")
        fs.write_path("a.txt", b"a")  # no injected client: stratoflow's own configuration
    assert keys(s3) == {"exports/a.txt"}
    session_fs = RemoteFileSystem(basepath=f"s3://{BUCKET}").with_session(
        boto3.Session(region_name="us-east-1")
    )
    assert session_fs.read_path("exports/a.txt") == b"a"
