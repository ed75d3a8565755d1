"""Code bundles: deterministic zips, ignores, symlinks, limits and safe extraction."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from stratoflow.deployments import bundle_build
from stratoflow.deployments.bundles import (
    IGNORE_FILE,
    Bundle,
    BundleError,
    BundleRef,
    build_bundle,
    bundle_key,
    extract_bundle,
)
from stratoflow.exceptions import StratoflowError

FILES = {
    "flows.py": "from stratoflow import flow\n",
    "pkg/__init__.py": "",
    "pkg/etl.py": "def run():\n    return 42\n" * 50,
    "pkg/sql/query.sql": "select 1;\n",
    "README.md": "# project\n",
}


def write(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write(tmp_path / "project", FILES)


def entries(bundle: Bundle) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle.data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


# Determinism


def test_same_files_give_the_same_bundle(tmp_path: Path) -> None:
    first = write(tmp_path / "one", FILES)
    second = write(tmp_path / "two", dict(reversed(FILES.items())))  # created in another order

    a, b = build_bundle(first), build_bundle(second)

    assert a.data == b.data
    assert a.sha256 == b.sha256
    assert a.files == b.files == tuple(sorted(FILES))
    assert a.size == len(a.data)


def test_touching_files_keeps_the_sha(project: Path) -> None:
    before = build_bundle(project)
    for path in project.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    (project / "flows.py").chmod(0o600)  # only the executable bit matters

    assert build_bundle(project).sha256 == before.sha256


def test_changing_content_changes_the_sha(project: Path) -> None:
    before = build_bundle(project)
    (project / "pkg" / "etl.py").write_text("def run():\n    return 43\n")
    assert build_bundle(project).sha256 != before.sha256


def test_adding_or_renaming_a_file_changes_the_sha(project: Path) -> None:
    before = build_bundle(project)
    (project / "README.md").rename(project / "README.txt")
    renamed = build_bundle(project)
    (project / "new.py").write_text("")
    added = build_bundle(project)
    assert len({before.sha256, renamed.sha256, added.sha256}) == 3


def test_entries_are_normalized(project: Path) -> None:
    script = project / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o700)

    bundle = build_bundle(project)

    with zipfile.ZipFile(io.BytesIO(bundle.data)) as archive:
        infos = archive.infolist()
    assert [info.filename for info in infos] == sorted([*FILES, "run.sh"])
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert "\\" not in info.filename
        mode = info.external_attr >> 16
        assert stat.S_ISREG(mode)
        assert stat.S_IMODE(mode) == (0o755 if info.filename == "run.sh" else 0o644)
    assert entries(bundle)["pkg/sql/query.sql"] == b"select 1;\n"


def test_bundle_repr_leaves_out_the_data(project: Path) -> None:
    bundle = build_bundle(project)
    assert repr(bundle) == f"Bundle(sha256={bundle.sha256!r}, files=5, size={bundle.size})"


# Ignores


def test_builtin_ignores(project: Path) -> None:
    write(
        project,
        {
            ".git/config": "x",
            "__pycache__/flows.cpython-311.pyc": "x",
            "pkg/__pycache__/etl.cpython-311.pyc": "x",
            "stray.pyc": "x",
            ".venv/lib/site.py": "x",
            "venv/bin/python": "x",
            ".mypy_cache/x.json": "x",
            ".pytest_cache/v": "x",
            ".ruff_cache/v": "x",
            "web/node_modules/left-pad/index.js": "x",
            "cdk.out/manifest.json": "x",
            ".stratoflow/storage/r": "x",
            "project.egg-info/PKG-INFO": "x",
        },
    )
    assert build_bundle(project).files == tuple(sorted(FILES))


def test_builtin_ignores_only_match_directories_where_they_say_so(project: Path) -> None:
    write(project, {"venv": "a file named venv", "notes.egg-info": "a file"})
    assert {"venv", "notes.egg-info"} <= set(build_bundle(project).files)


def test_ignore_file(project: Path) -> None:
    write(
        project,
        {
            "data/big.parquet": "x",
            "pkg/data/kept.csv": "pkg/data is not the top-level data/",
            "debug.log": "x",
            "pkg/trace.log": "x",
            "keep.log": "x",
            "secret.txt": "x",
            "pkg/secret.txt": "only the top-level one is ignored",
            IGNORE_FILE: "# comments and blank lines are fine\n\n"
            "/data/\n*.log\n!keep.log\n/secret.txt\n",
        },
    )

    files = build_bundle(project).files

    assert files == tuple(
        sorted([*FILES, IGNORE_FILE, "keep.log", "pkg/data/kept.csv", "pkg/secret.txt"])
    )


def test_negation_inside_ignored_directories(project: Path) -> None:
    write(project, {"data/keep.csv": "k", "data/drop.csv": "d", "raw/keep.csv": "k"})
    write(project, {IGNORE_FILE: "/data/*\n!/data/keep.csv\n/raw/\n!/raw/keep.csv\n"})
    files = build_bundle(project).files
    assert "data/keep.csv" in files  # the directory itself was not ignored
    assert "data/drop.csv" not in files
    assert "raw/keep.csv" not in files  # as in git: raw/ is ignored as a whole


def test_an_ignore_file_cannot_bring_back_builtin_ignores(project: Path) -> None:
    write(project, {"stray.pyc": "x", ".git/HEAD": "x", IGNORE_FILE: "!*.pyc\n!.git/\n"})
    assert build_bundle(project).files == tuple(sorted([*FILES, IGNORE_FILE]))


def test_gitignore_is_not_used(project: Path) -> None:
    write(project, {".gitignore": "*.md\n"})
    assert "README.md" in build_bundle(project).files


# Symlinks


def test_symlink_inside_the_project_bundles_the_target_content(project: Path) -> None:
    (project / "alias.py").symlink_to("pkg/etl.py")
    (project / "sql").symlink_to("pkg/sql", target_is_directory=True)

    bundle = build_bundle(project)

    content = entries(bundle)
    assert content["alias.py"] == (project / "pkg" / "etl.py").read_bytes()
    assert content["sql/query.sql"] == b"select 1;\n"
    assert bundle.skipped == ()


def test_symlinks_outside_the_project_are_skipped(
    project: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outside = write(tmp_path / "elsewhere", {"secret.txt": "x"})
    (project / "secret.txt").symlink_to(outside / "secret.txt")
    (project / "elsewhere").symlink_to(outside, target_is_directory=True)
    (project / "dangling").symlink_to(project / "missing")

    bundle = build_bundle(project)

    assert bundle.files == tuple(sorted(FILES))
    assert bundle.skipped == ("dangling", "elsewhere", "secret.txt")
    assert "outside the project" in caplog.text
    assert "broken symlink" in caplog.text


def test_symlink_loops_are_skipped(project: Path) -> None:
    (project / "pkg" / "loop").symlink_to(project, target_is_directory=True)
    bundle = build_bundle(project)
    assert bundle.files == tuple(sorted(FILES))
    assert bundle.skipped == ("pkg/loop",)


def test_ignored_symlinks_are_not_reported(project: Path, tmp_path: Path) -> None:
    (project / ".venv").symlink_to(tmp_path, target_is_directory=True)
    assert build_bundle(project).skipped == ()


def test_project_dir_may_be_a_symlink(project: Path, tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(project, target_is_directory=True)
    assert build_bundle(tmp_path / "link").sha256 == build_bundle(project).sha256


# Errors


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        build_bundle(tmp_path / "nope")


def test_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file.py").write_text("")
    with pytest.raises(BundleError, match="not a directory"):
        build_bundle(tmp_path / "file.py")


def test_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="Nothing to bundle"):
        build_bundle(tmp_path)


def test_directory_empty_after_ignores(tmp_path: Path) -> None:
    write(tmp_path, {"__pycache__/x.pyc": "x", "data.csv": "x", IGNORE_FILE: "*\n"})
    with pytest.raises(BundleError, match=IGNORE_FILE) as caught:
        build_bundle(tmp_path)
    assert isinstance(caught.value, StratoflowError)


def test_size_limit_names_the_biggest_files(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project, {"data/huge.bin": "x" * 5000, "data/big.bin": "x" * 3000})
    monkeypatch.setattr(bundle_build, "MAX_BUNDLE_BYTES", 4096)

    with pytest.raises(BundleError, match=r"over the 4\.0 KiB limit") as caught:
        build_bundle(project)

    message = str(caught.value)
    assert "data/huge.bin (4.9 KiB)" in message
    assert message.index("data/huge.bin") < message.index("data/big.bin")
    assert IGNORE_FILE in message


# Extraction


def test_extract_round_trip(project: Path, tmp_path: Path) -> None:
    (project / "run.sh").write_text("#!/bin/sh\n")
    (project / "run.sh").chmod(0o755)
    bundle = build_bundle(project)
    out = tmp_path / "out"
    out.mkdir()

    extract_bundle(bundle.data, out)

    extracted = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert extracted == list(bundle.files)
    for name in bundle.files:
        assert (out / name).read_bytes() == (project / name).read_bytes()
    assert os.access(out / "run.sh", os.X_OK)


def zip_with(*names: str, symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("fine.txt", "ok")
        for name in names:
            archive.writestr(name, "escaped")
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name", ["../escape.txt", "a/../../escape.txt", "/tmp/escape.txt", "C:/escape.txt", "..\\e"]
)
def test_extract_refuses_entries_that_escape(tmp_path: Path, name: str) -> None:
    out = tmp_path / "deep" / "out"
    out.mkdir(parents=True)
    with pytest.raises(BundleError, match="outside"):
        extract_bundle(zip_with(name), out)
    assert list(out.iterdir()) == []  # checked before anything is written
    assert not list(tmp_path.rglob("escape.txt"))


def test_extract_refuses_symlink_entries(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="symlink"):
        extract_bundle(zip_with(symlink="link"), tmp_path)


def test_extract_refuses_garbage(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a valid zip"):
        extract_bundle(b"not a zip", tmp_path)


# References


def test_bundle_ref_and_key() -> None:
    sha = "ab" * 32
    ref = BundleRef(bucket="stratoflow-code", key=bundle_key(sha), sha256=sha)
    assert ref.key == f"bundles/{sha}.zip"
    assert ref.uri == f"s3://stratoflow-code/bundles/{sha}.zip"


@pytest.mark.parametrize("bad", ["", "abc", "../" + "a" * 61, "g" * 64])
def test_bundle_key_refuses_non_sha(bad: str) -> None:
    with pytest.raises(BundleError, match="not a bundle sha256"):
        bundle_key(bad)
