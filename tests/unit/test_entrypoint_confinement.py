"""`load_flow(entrypoint, root=bundle_dir)`: a deployment's entrypoint must name a file
inside its code bundle (security finding 5, docs/security.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratoflow.entrypoints import EntrypointError, load_flow

FLOW = "from stratoflow import flow\n\n\n@flow\ndef f() -> int:\n    return 1\n"
PLANTED = (
    "import os\nfrom pathlib import Path\n\nfrom stratoflow import flow\n\n"
    "Path(os.environ['PLANTED_MARKER']).write_text('ran')\n\n\n"
    "@flow\ndef f() -> int:\n    return 2\n"
)
FIX = "Redeploy with an entrypoint relative to the project, like 'flows/etl.py:etl'."


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "marker"
    monkeypatch.setenv("PLANTED_MARKER", str(path))
    return path


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A bundle directory with a flow, beside files the entrypoints below try to reach."""
    root = tmp_path / "runs" / "bundle"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "flows.py").write_text(FLOW)
    (tmp_path / "runs" / "x.py").write_text(PLANTED)
    (tmp_path / "x.py").write_text(PLANTED)
    return root


def test_an_entrypoint_inside_the_bundle_loads(bundle: Path) -> None:
    assert load_flow("pkg/flows.py:f", root=bundle)() == 1
    assert load_flow("./pkg/flows.py:f", root=bundle)() == 1


@pytest.mark.parametrize(
    ("entrypoint", "refusal"),
    [
        ("/etc/x.py:f", "absolute paths are refused"),
        ("{tmp}/x.py:f", "absolute paths are refused"),
        ("C:\\x.py:f", "absolute paths are refused"),
        ("../x.py:f", "'..' is refused"),
        ("../../x.py:f", "'..' is refused"),
        ("pkg/../../x.py:f", "'..' is refused"),
        ("pkg\\..\\..\\x.py:f", "'..' is refused"),
    ],
)
def test_an_entrypoint_outside_the_bundle_is_refused(
    bundle: Path, tmp_path: Path, marker: Path, entrypoint: str, refusal: str
) -> None:
    given = entrypoint.format(tmp=tmp_path)

    with pytest.raises(EntrypointError) as caught:
        load_flow(given, root=bundle)

    assert str(caught.value) == (
        f"Entrypoint {given!r}: {refusal}, the file must be inside the deployment's code "
        f"bundle. {FIX}"
    )
    assert not marker.exists()


@pytest.mark.parametrize("link", ["escape.py", "pkg/escape.py", "linked/x.py"])
def test_a_symlink_leading_out_of_the_bundle_is_refused(
    bundle: Path, tmp_path: Path, marker: Path, link: str
) -> None:
    if link == "linked/x.py":
        (bundle / "linked").symlink_to(tmp_path)  # a directory symlink
    else:
        (bundle / link).symlink_to(tmp_path / "x.py")

    with pytest.raises(EntrypointError) as caught:
        load_flow(f"{link}:f", root=bundle)

    assert str(caught.value) == (
        f"Entrypoint '{link}:f': a symlink leads outside the deployment's code bundle "
        f"(to {(tmp_path / 'x.py').resolve()}): refused. {FIX}"
    )
    assert not marker.exists()


def test_a_symlink_within_the_bundle_is_followed(bundle: Path) -> None:
    (bundle / "alias.py").symlink_to(bundle / "pkg" / "flows.py")

    assert load_flow("alias.py:f", root=bundle)() == 1


def test_a_missing_file_names_the_bundle(bundle: Path) -> None:
    with pytest.raises(EntrypointError) as caught:
        load_flow("nope.py:f", root=bundle)

    assert str(caught.value) == (
        f"Entrypoint 'nope.py:f': the deployment's code bundle has no file 'nope.py'. {FIX}"
    )
