"""The Lambda code asset, bundled without Docker.

One asset serves every function (each has its own handler string). `cdk synth` bundles
it on this machine: `pip install <repo root> --target <asset> --platform
manylinux2014_x86_64 --implementation cp --python-version 3.12 --only-binary=:all:`
installs stratoflow and its dependencies as Linux x86_64 CPython 3.12 wheels (whatever
the local OS), then `functions/` is copied in. The Docker image of `BundlingOptions` is
only the fallback the CDK API requires; local bundling never declines, so it is not
pulled.

A quick synth skips bundling with the app's `-c bundle=false` (the CDK CLI refuses
user context keys starting with `aws:`, so its own `aws:cdk:bundling-stacks` cannot be
given with `-c`); tests set that CDK key directly. Either way the asset then points at
the unbundled source directory.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = "functions"
PYTHON_VERSION = "3.12"
PLATFORM = "manylinux2014_x86_64"
FALLBACK_IMAGE = "public.ecr.aws/sam/build-python3.12"

ASSET_EXCLUDE = (
    "*",
    "!sdk",
    "!sdk/**",
    f"!{FUNCTIONS_DIR}",
    f"!{FUNCTIONS_DIR}/**",
    "!pyproject.toml",
    "!README.md",
    "**/__pycache__",
    "**/*.pyc",
    "**/*.egg-info",
)
"""Only what the bundle is built from counts in the asset hash (not .venv, cdk.out, ...)."""


def pip_command(source: Path, output_dir: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        str(source),
        "--target",
        output_dir,
        "--platform",
        PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        "--upgrade",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
    ]


@jsii.implements(ILocalBundling)
class LocalBundling:
    """`ILocalBundling`: bundle on this machine with pip. Returns True (bundled) or raises
    with pip's output; it never falls back to Docker."""

    def __init__(self, source: Path = REPO_ROOT) -> None:
        self.source = source

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        result = subprocess.run(
            pip_command(self.source, output_dir),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"Bundling the Lambda code failed (pip exited with {result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        shutil.copytree(
            self.source / FUNCTIONS_DIR,
            Path(output_dir) / FUNCTIONS_DIR,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            dirs_exist_ok=True,
        )
        return True


def lambda_code(source: Path = REPO_ROOT, *, bundle: bool = True) -> lambda_.Code:
    """The shared code asset of every function (handler `functions.<name>.handler.<fn>`);
    with `bundle=False`, the source as it is (no dependencies: not for deploying)."""
    if not bundle:
        return lambda_.Code.from_asset(
            str(source), exclude=list(ASSET_EXCLUDE), asset_hash_type=AssetHashType.SOURCE
        )
    return lambda_.Code.from_asset(
        str(source),
        exclude=list(ASSET_EXCLUDE),
        asset_hash_type=AssetHashType.SOURCE,
        bundling=BundlingOptions(
            image=DockerImage.from_registry(FALLBACK_IMAGE),
            local=LocalBundling(source),
            command=["false"],  # never run: local bundling always succeeds or raises
        ),
    )
