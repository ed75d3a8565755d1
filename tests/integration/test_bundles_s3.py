"""BundleStore against moto: content-addressed uploads, cached downloads, integrity checks,
concurrent per-run checkouts and refused zip entries."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stratoflow.deployments.bundles import (
    Bundle,
    BundleError,
    BundleNotFound,
    BundleRef,
    BundleStore,
    build_bundle,
)
from stratoflow.exceptions import ObjectNotFound

BUCKET = "stratoflow-code"
FILES = {
    "flows.py": "from stratoflow import flow\n",
    "pkg/__init__.py": "",
    "pkg/etl.py": "def run():\n    return 42\n" * 100,
    "pkg/sql/query.sql": "select 1;\n",
}


def write(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def project_files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


class CallCounter:
    """Counts one S3 operation through botocore's event hooks."""

    def __init__(self, client: Any, operation: str) -> None:
        self.count = 0
        self._lock = threading.Lock()
        client.meta.events.register(f"before-call.s3.{operation}", self)

    def __call__(self, **kwargs: Any) -> None:
        with self._lock:
            self.count += 1


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        session = boto3.Session(
            region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        client = session.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def store(s3: Any, tmp_path: Path) -> BundleStore:
    return BundleStore(s3, BUCKET, cache_dir=tmp_path / "cache")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write(tmp_path / "project", FILES)


def test_upload_then_checkout_round_trip(store: BundleStore, project: Path, s3: Any) -> None:
    bundle = build_bundle(project)

    ref, uploaded = store.upload(bundle)

    assert uploaded
    assert ref == BundleRef(BUCKET, f"bundles/{bundle.sha256}.zip", bundle.sha256)
    head = s3.head_object(Bucket=BUCKET, Key=ref.key)
    assert head["Metadata"] == {"sha256": bundle.sha256}
    assert head["ContentLength"] == bundle.size

    with store.checkout(ref) as path:
        assert path.parent == store.cache_dir / "runs"
        assert project_files(path) == project_files(project)

    assert not path.exists()  # removed with the run
    assert sorted(p.name for p in store.cache_dir.iterdir()) == [f"{bundle.sha256}.zip", "runs"]
    assert list((store.cache_dir / "runs").iterdir()) == []
    assert (store.cache_dir / f"{bundle.sha256}.zip").read_bytes() == bundle.data


def test_redeploying_unchanged_code_uploads_nothing(
    store: BundleStore, project: Path, tmp_path: Path, s3: Any
) -> None:
    puts = CallCounter(s3, "PutObject")
    first_ref, first = store.upload(build_bundle(project))
    again = write(tmp_path / "checkout", FILES)  # the same code elsewhere, newer mtimes

    second_ref, second = store.upload(build_bundle(again))

    assert (first, second) == (True, False)
    assert second_ref == first_ref
    assert puts.count == 1

    (again / "pkg" / "etl.py").write_text("def run():\n    return 43\n")
    changed_ref, changed = store.upload(build_bundle(again))
    assert changed
    assert changed_ref.key != first_ref.key
    assert puts.count == 2


def test_checkout_twice_downloads_once(store: BundleStore, project: Path, s3: Any) -> None:
    ref, _ = store.upload(build_bundle(project))
    gets = CallCounter(s3, "GetObject")

    other_worker = BundleStore(s3, BUCKET, cache_dir=store.cache_dir)
    with (
        store.checkout(ref) as first,
        store.checkout(ref.sha256) as second,  # a sha is enough for the store's bucket
        other_worker.checkout(ref) as third,
    ):
        assert len({first, second, third}) == 3  # each run its own directory
        assert project_files(first) == project_files(second) == project_files(third)

    assert gets.count == 1


def test_corrupted_object_is_refused(store: BundleStore, project: Path, s3: Any) -> None:
    bundle = build_bundle(project)
    ref, _ = store.upload(bundle)
    s3.put_object(Bucket=BUCKET, Key=ref.key, Body=b"other bytes under the same key")

    with pytest.raises(BundleError, match="does not match its address") as caught:
        store.load(ref)

    assert ref.uri in str(caught.value)
    assert "redeploy (`strato deploy`)" in str(caught.value)
    assert not store.cache_dir.exists() or list(store.cache_dir.iterdir()) == []

    # Redeploying heals it: the overwritten object lost the sha256 metadata.
    _, uploaded = store.upload(bundle)
    assert uploaded
    with store.checkout(ref) as path:
        assert project_files(path) == project_files(project)


def test_missing_bundle(store: BundleStore) -> None:
    sha = "0" * 64

    with pytest.raises(BundleNotFound) as caught:
        store.load(sha)

    message = str(caught.value)
    assert f"s3://{BUCKET}/bundles/{sha}.zip" in message
    assert "strato deploy" in message
    assert isinstance(caught.value, ObjectNotFound)
    assert isinstance(caught.value, BundleError)


def test_missing_bucket_on_upload(s3: Any, project: Path, tmp_path: Path) -> None:
    store = BundleStore(s3, "no-such-code-bucket", cache_dir=tmp_path / "cache")
    with pytest.raises(BundleError, match="no-such-code-bucket"):
        store.upload(build_bundle(project))


def test_upload_refuses_a_bundle_whose_sha_does_not_match(store: BundleStore) -> None:
    with pytest.raises(BundleError, match="does not match"):
        store.upload(Bundle(sha256="0" * 64, data=b"zip", files=("a",)))


def test_concurrent_checkouts_each_get_a_complete_directory(
    store: BundleStore, project: Path, s3: Any
) -> None:
    ref, _ = store.upload(build_bundle(project))
    threads = 4
    # Hold every checkout at its download until all four got there: all four then race
    # to cache the zip, then hold their directories at once.
    everyone_downloading = threading.Barrier(threads, timeout=10)
    everyone_running = threading.Barrier(threads, timeout=10)

    def hold(**kwargs: Any) -> None:  # returning a value would replace the call's response
        everyone_downloading.wait()

    s3.meta.events.register("before-call.s3.GetObject", hold)
    results: list[dict[str, bytes]] = []
    directories: list[Path] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with store.checkout(ref) as path:
                directories.append(path)
                everyone_running.wait()
                results.append(project_files(path))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=20)

    assert errors == []
    assert results == [project_files(project)] * threads
    assert len(set(directories)) == threads
    names = sorted(p.name for p in store.cache_dir.iterdir())
    assert names == [f"{ref.sha256}.zip", "runs"]  # no partial copies
    assert list((store.cache_dir / "runs").iterdir()) == []


def test_zip_slip_entry_is_refused(store: BundleStore, s3: Any, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("flows.py", "")
        archive.writestr("../../escaped.py", "import os")
    data = buffer.getvalue()
    sha = hashlib.sha256(data).hexdigest()  # a correct sha: only the entry is wrong
    s3.put_object(Bucket=BUCKET, Key=f"bundles/{sha}.zip", Body=data, Metadata={"sha256": sha})

    with pytest.raises(BundleError, match="outside"), store.checkout(sha):
        pytest.fail("the bundle was checked out")

    assert not list(tmp_path.rglob("escaped.py"))
    assert list((store.cache_dir / "runs").iterdir()) == []


def _plant_symlink(path: Path, planted: Path) -> None:
    path.symlink_to(planted)


def _plant_directory(path: Path, planted: Path) -> None:
    path.mkdir()
    (path / "flows.py").write_text("raise SystemExit('planted')\n")


def _plant_fifo(path: Path, planted: Path) -> None:
    os.mkfifo(path)  # reading it would block forever


def _plant_other_zip(path: Path, planted: Path) -> None:
    path.write_bytes(planted.read_bytes())


@pytest.mark.parametrize("plant", [_plant_other_zip, _plant_symlink, _plant_directory, _plant_fifo])
def test_a_tampered_cache_entry_is_downloaded_again_and_replaced(
    store: BundleStore, project: Path, s3: Any, tmp_path: Path, plant: Any
) -> None:
    ref, _ = store.upload(build_bundle(project))
    with store.checkout(ref):
        pass  # cached now
    cached = store.cache.zip_path(ref.sha256)
    planted = tmp_path / "planted.zip"
    with zipfile.ZipFile(planted, "w") as archive:
        archive.writestr("flows.py", "raise SystemExit('planted')\n")
    cached.unlink()
    plant(cached, planted)
    gets = CallCounter(s3, "GetObject")

    with store.checkout(ref) as path:
        assert project_files(path) == project_files(project)

    assert gets.count == 1
    assert not cached.is_symlink()
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == ref.sha256
    assert planted.exists()  # a symlink's target is not written through
