"""`stratoflow.filesystems` (Prefect 3's `prefect.filesystems`): LocalFileSystem on disk,
RemoteFileSystem's validation and key resolution (its S3 calls: tests/integration/
test_filesystems_s3.py), both saved and loaded as blocks with the memory backend."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from stratoflow import flow
from stratoflow.blocks import Block
from stratoflow.filesystems import (
    LocalFileSystem,
    ReadableDeploymentStorage,
    ReadableFileSystem,
    RemoteFileSystem,
    WritableDeploymentStorage,
    WritableFileSystem,
)
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


def tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def make_files(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


# Blocks


def test_they_are_blocks_with_prefects_slugs(harness: TestHarness, tmp_path: Path) -> None:
    assert LocalFileSystem.get_block_type_slug() == "local-file-system"
    assert RemoteFileSystem.get_block_type_slug() == "remote-file-system"
    LocalFileSystem(basepath=tmp_path).save("scratch")  # a Path is taken, kept as a string
    loaded = LocalFileSystem.load("scratch")
    assert loaded.basepath == str(tmp_path)
    RemoteFileSystem(basepath="s3://acme-data/exports").save("exports")
    assert RemoteFileSystem.load("exports").basepath == "s3://acme-data/exports"
    assert Block.load("remote-file-system/exports").basepath == "s3://acme-data/exports"


def test_the_abstract_bases_are_prefects() -> None:
    local = LocalFileSystem()
    remote = RemoteFileSystem(basepath="s3://b/p")
    for block in (local, remote):
        assert isinstance(block, WritableFileSystem)
        assert isinstance(block, WritableDeploymentStorage)
    for abstract in (
        ReadableFileSystem,
        WritableFileSystem,
        ReadableDeploymentStorage,
        WritableDeploymentStorage,
    ):
        with pytest.raises(TypeError, match="abstract"):
            abstract()


# LocalFileSystem: read_path, write_path, the base path


def test_write_then_read_relative_to_the_base_path(tmp_path: Path) -> None:
    fs = LocalFileSystem(basepath=str(tmp_path / "base"))
    written = fs.write_path("2026/orders.json", b"[1]")
    assert written == str((tmp_path / "base" / "2026" / "orders.json").resolve())
    assert fs.read_path("2026/orders.json") == b"[1]"
    assert fs.read_path(written) == b"[1]"  # an absolute path inside the base path


def test_without_a_base_path_the_current_directory_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    LocalFileSystem().write_path("here.txt", b"x")
    assert (tmp_path / "here.txt").read_bytes() == b"x"


def test_home_is_expanded_where_the_block_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    LocalFileSystem(basepath="~/data").write_path("a.txt", b"x")
    assert (tmp_path / "data" / "a.txt").read_bytes() == b"x"


def test_reading_a_missing_path_or_a_directory_is_a_value_error(tmp_path: Path) -> None:
    fs = LocalFileSystem(basepath=str(tmp_path))
    with pytest.raises(ValueError, match="does not exist"):
        fs.read_path("missing.txt")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match="is not a file"):
        fs.read_path("folder")
    with pytest.raises(ValueError, match="already exists and is not a file"):
        fs.write_path("folder", b"x")


@pytest.mark.parametrize("path", ["../outside.txt", "a/../../outside.txt", "/etc/passwd"])
def test_paths_outside_the_base_path_are_refused(tmp_path: Path, path: str) -> None:
    fs = LocalFileSystem(basepath=str(tmp_path / "base"))
    with pytest.raises(ValueError, match="is outside of the base path"):
        fs.write_path(path, b"x")
    with pytest.raises(ValueError, match="is outside of the base path"):
        fs.read_path(path)
    assert not (tmp_path / "outside.txt").exists()


def test_a_symlink_out_of_the_base_path_is_refused(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (tmp_path / "secret.txt").write_text("s")
    os.symlink(tmp_path / "secret.txt", base / "link.txt")
    with pytest.raises(ValueError, match="is outside of the base path"):
        LocalFileSystem(basepath=str(base)).read_path("link.txt")


def test_a_sibling_directory_with_the_same_prefix_is_outside(tmp_path: Path) -> None:
    fs = LocalFileSystem(basepath=str(tmp_path / "data"))
    with pytest.raises(ValueError, match="is outside of the base path"):
        fs.write_path(str(tmp_path / "data2" / "x.txt"), b"x")


# LocalFileSystem: get_directory, put_directory


def test_get_directory_copies_the_base_path_leaving_out_prefectignore(tmp_path: Path) -> None:
    base, out = tmp_path / "base", tmp_path / "out"
    make_files(
        base,
        {
            "flows/etl.py": "e",
            "flows/cache.pyc": "c",
            "logs/run.log": "l",
            "README.md": "r",
            ".prefectignore": "*.pyc\nlogs/\n",
        },
    )
    LocalFileSystem(basepath=str(base)).get_directory(local_path=str(out))
    assert tree(out) == {"flows/etl.py", "README.md", ".prefectignore"}


def test_get_directory_of_a_sub_folder_into_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, out = tmp_path / "base", tmp_path / "out"
    make_files(base, {"flows/etl.py": "e", "other.txt": "o"})
    out.mkdir()
    monkeypatch.chdir(out)
    fs = LocalFileSystem(basepath=str(base))
    fs.get_directory(from_path="flows")
    assert tree(out) == {"etl.py"}
    with pytest.raises(ValueError, match="is outside of the base path"):
        fs.get_directory(from_path="..", local_path=str(tmp_path / "elsewhere"))


def test_put_directory_with_an_ignore_file(tmp_path: Path) -> None:
    src, base = tmp_path / "src", tmp_path / "base"
    make_files(
        src,
        {
            "etl.py": "e",
            "lib/util.py": "u",
            "lib/util.pyc": "c",
            "build/out.bin": "b",
            "keep/important.pyc": "k",
        },
    )
    ignore = tmp_path / "ignore"
    ignore.write_text("*.pyc\nbuild/\n!keep/important.pyc\n")
    fs = LocalFileSystem(basepath=str(base))
    fs.put_directory(local_path=str(src), to_path="v1", ignore_file=str(ignore))
    assert tree(base / "v1") == {"etl.py", "lib/util.py", "keep/important.pyc"}
    fs.put_directory(local_path=str(src))  # without one: everything, into the base path
    assert "build/out.bin" in tree(base)
    with pytest.raises(ValueError, match="is outside of the base path"):
        fs.put_directory(local_path=str(src), to_path="../elsewhere")


def test_put_directory_into_a_base_path_inside_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_files(tmp_path, {"etl.py": "e"})
    monkeypatch.chdir(tmp_path)
    LocalFileSystem(basepath=str(tmp_path / "copies")).put_directory()  # not into itself
    assert tree(tmp_path / "copies") == {"etl.py"}


def test_async_forms_and_dispatch(tmp_path: Path, harness: TestHarness) -> None:
    fs = LocalFileSystem(basepath=str(tmp_path))

    @flow
    async def pipeline() -> bytes:
        await fs.write_path("a.txt", b"async")  # a coroutine in async code, as Prefect's
        return await fs.read_path("a.txt")

    assert asyncio.run(pipeline()) == b"async"
    assert asyncio.run(fs.aread_path("a.txt")) == b"async"
    assert fs.read_path("a.txt", _sync=True) == b"async"


# RemoteFileSystem: validation and keys


@pytest.mark.parametrize(
    ("basepath", "message"),
    [
        ("gcs://bucket/folder", "supports S3 only"),
        ("az://container/folder", "Use LocalFileSystem for local files"),
        ("file:///tmp/data", "Use `LocalFileSystem` instead"),
        ("bucket/folder", "must start with a scheme"),
        ("s3:///folder", "must include a location"),
        ("s3://bucket/a/../b", "must not contain"),
    ],
)
def test_remote_base_paths_must_be_s3(basepath: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RemoteFileSystem(basepath=basepath)


def test_remote_settings_take_where_to_reach_s3_never_credentials() -> None:
    RemoteFileSystem(basepath="s3://b", settings={"endpoint_url": "http://127.0.0.1:9000"})
    RemoteFileSystem(basepath="s3://b", settings={"client_kwargs": {"region_name": "eu-west-1"}})
    with pytest.raises(ValueError, match=r"\['key', 'secret'\] are not supported.*own AWS"):
        RemoteFileSystem(basepath="s3://b", settings={"key": "AKIA", "secret": "x"})


@pytest.mark.parametrize(
    ("path", "key"),
    [
        (None, "exports"),
        ("orders.json", "exports/orders.json"),
        ("/2026/orders.json", "exports/2026/orders.json"),
        ("s3://acme/exports/2026/x.json", "exports/2026/x.json"),
        ("S3://acme/exports", "exports"),
        ("what?is#this", "exports/what?is#this"),  # S3 keys may hold ? and #
    ],
)
def test_remote_keys_are_under_the_prefix(path: str | None, key: str) -> None:
    assert RemoteFileSystem(basepath="s3://acme/exports/")._resolve_key(path) == key


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../other/x", "outside of the base path"),
        ("a/%2e%2e/%2E%2E/x", "outside of the base path"),
        ("a\\..\\..\\x", "outside of the base path"),
        ("s3://other-bucket/exports/x", "outside of the base path"),
        ("s3://acme/exports2/x", "outside of the base path"),
        ("s3://acme/exports/../secrets/x", "outside of the base path"),
        ("gcs://acme/exports/x", "must use the same scheme"),
    ],
)
def test_remote_keys_outside_the_prefix_are_refused(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RemoteFileSystem(basepath="s3://acme/exports")._resolve_key(path)


def test_a_bucket_without_prefix_takes_any_key_of_that_bucket() -> None:
    fs = RemoteFileSystem(basepath="s3://acme")
    assert fs._resolve_key("a/b.txt") == "a/b.txt"
    assert fs._resolve_key("s3://acme/z") == "z"
