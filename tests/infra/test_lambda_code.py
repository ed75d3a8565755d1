"""Local bundling without Docker (pip is never run in tests: `subprocess.run` is faked)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.constructs import lambda_code as module
from infra.constructs.lambda_code import LocalBundling, lambda_code, pip_command
from tests.infra._cdk import cdk


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "functions" / "scheduler").mkdir(parents=True)
    (root / "functions" / "scheduler" / "handler.py").write_text("def handler(e, c): ...\n")
    (root / "functions" / "scheduler" / "__pycache__").mkdir()
    (root / "functions" / "scheduler" / "__pycache__" / "x.pyc").write_bytes(b"")
    return root


def test_pip_installs_for_the_lambda_platform(source: Path):
    command = pip_command(source, "/out")
    joined = " ".join(command)
    assert command[1:4] == ["-m", "pip", "install"]
    assert command[4] == str(source)
    for flag in (
        "--target /out",
        "--platform manylinux2014_x86_64",
        "--implementation cp",
        "--python-version 3.12",
        "--only-binary=:all:",
        "--upgrade",
    ):
        assert flag in joined


def test_try_bundle_installs_then_copies_functions(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    calls: list[list[str]] = []

    def fake_run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(module.subprocess, "run", fake_run)
    out = tmp_path / "asset"
    out.mkdir()
    image = cdk.DockerImage.from_registry(module.FALLBACK_IMAGE)
    assert LocalBundling(source).try_bundle(str(out), image=image) is True
    assert calls == [pip_command(source, str(out))]
    assert (out / "functions" / "scheduler" / "handler.py").is_file()
    assert not (out / "functions" / "scheduler" / "__pycache__").exists()


def test_pip_failure_stops_synthesis_with_its_output(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(
        module.subprocess,
        "run",
        lambda command, **_: subprocess.CompletedProcess(command, 1, "", "No matching dist"),
    )
    image = cdk.DockerImage.from_registry(module.FALLBACK_IMAGE)
    with pytest.raises(RuntimeError, match="No matching dist"):
        LocalBundling(source).try_bundle(str(tmp_path), image=image)


def test_local_bundling_implements_the_cdk_interface():
    assert cdk.ILocalBundling in getattr(LocalBundling, "__jsii_ifaces__", ())


def test_asset_hash_ignores_everything_but_the_sources():
    assert "!sdk/**" in module.ASSET_EXCLUDE
    assert "!functions/**" in module.ASSET_EXCLUDE
    assert module.ASSET_EXCLUDE[0] == "*"
    assert isinstance(lambda_code(), cdk.aws_lambda.AssetCode)


def test_bundle_false_synthesizes_the_unbundled_source_without_running_pip(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """`make synth CDK_ARGS='-c bundle=false'`: the CLI gives no bundling-stacks key of
    its own choosing here, so the app must not bundle by itself."""
    calls: list[str] = []

    def spy(self: LocalBundling, output_dir: str, **_: Any) -> bool:
        calls.append(output_dir)
        raise AssertionError("bundle=false must not bundle")

    monkeypatch.setattr(LocalBundling, "try_bundle", spy)
    stack = cdk.Stack(cdk.App(outdir=str(tmp_path / "out")), "Quick")
    code = lambda_code(source, bundle=False)
    cdk.aws_lambda.Function(
        stack,
        "Fn",
        code=code,
        handler="functions.scheduler.handler.handler",
        runtime=cdk.aws_lambda.Runtime.PYTHON_3_12,
    )
    assembly = stack.node.root.synth()  # type: ignore[attr-defined]
    staged = next((tmp_path / "out").glob("asset.*"))
    assert calls == []
    assert (staged / "functions" / "scheduler" / "handler.py").is_file()
    assert not list(staged.rglob("*.pyc"))
    assert assembly.get_stack_by_name("Quick").template
