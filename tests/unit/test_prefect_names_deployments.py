"""Prefect 3's `from prefect.deployments import run_deployment`, without import cycles."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stratoflow.deployments import run_deployment, runs
from stratoflow.platform import BackendNotConfigured
from stratoflow.testing import stratoflow_test_harness


def test_run_deployment_is_importable_from_the_package() -> None:
    assert run_deployment is runs.run_deployment


def test_it_needs_a_deployment_backend() -> None:
    with stratoflow_test_harness(), pytest.raises(BackendNotConfigured, match="AWS backend"):
        run_deployment("nightly-etl", timeout=0)


@pytest.mark.parametrize(
    "first",
    [
        "stratoflow.deployments",
        "stratoflow.deployments.models",
        "stratoflow.workers.lambda_worker",
        "stratoflow.workers.execute",
        "stratoflow.scheduler",
        "stratoflow.platform",
        "stratoflow.cli.app",
    ],
)
def test_no_import_cycle_whatever_is_imported_first(first: str) -> None:
    code = (
        f"import {first}\n"
        "from stratoflow.deployments import run_deployment\n"
        "import sys\n"
        "print('boto3' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    if first in ("stratoflow.deployments", "stratoflow.deployments.models"):
        assert done.stdout.strip() == "False"  # the package stays light: no AWS SDK at import
