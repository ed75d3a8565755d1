"""`strato dev`'s home is git-ignored, as pytest's .pytest_cache is (stratoflow.dev.stack)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from stratoflow.dev import DEV_HOME
from stratoflow.dev.stack import prepare_home


def test_the_home_it_creates_holds_a_gitignore_of_everything(tmp_path: Path) -> None:
    home = tmp_path / "project" / DEV_HOME

    prepare_home(home)

    assert (home / ".gitignore").read_text().splitlines()[-1] == "*"


def test_git_then_ignores_what_is_written_there(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "flows.py").write_text("")
    home = tmp_path / DEV_HOME
    prepare_home(home)
    (home / "bundles").mkdir()
    (home / "bundles" / "flows.py").write_text("import os\n")

    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )

    assert status.stdout.splitlines() == ["?? flows.py"]


def test_an_existing_default_home_gets_one_and_a_users_directory_is_left_alone(
    tmp_path: Path,
) -> None:
    old_home = tmp_path / DEV_HOME  # made by an earlier version of `strato dev`
    old_home.mkdir()
    mine = tmp_path / "my-results"
    mine.mkdir()
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / ".gitignore").write_text("*.zip\n")

    for home in (old_home, mine, tmp_path / "kept"):
        prepare_home(home)

    assert (old_home / ".gitignore").is_file()
    assert not (mine / ".gitignore").exists()
    assert (tmp_path / "kept" / ".gitignore").read_text() == "*.zip\n"
