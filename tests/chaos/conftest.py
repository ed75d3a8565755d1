"""One emulated installation for the whole chaos suite: the emulator (moto's server in
its own process), the resources, a work queue per test's work pool, and the project of
tests/chaos/_chaos.py deployed. The sweep thresholds are lowered (SWEEP_ENV) for this
process and every poller and flow run process it starts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from stratoflow import resources
from stratoflow.context import set_process_services
from stratoflow.deployments.deploy import deploy_project
from stratoflow.emulator import emulator
from stratoflow.platform import get_platform
from stratoflow.provisioning import provision_work_queue
from stratoflow.settings import get_settings
from tests.chaos._chaos import (
    FIGURES,
    POOLS,
    SCALE,
    SWEEP_ENV,
    Stack,
    write_figures,
    write_project,
)


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("chaos-home")
    ledger = tmp_path_factory.mktemp("chaos-ledger")
    logs = tmp_path_factory.mktemp("chaos-logs")
    project = write_project(tmp_path_factory.mktemp("chaos-project"), ledger)
    with emulator() as url, pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("STRATOFLOW_", "AWS_ENDPOINT_URL")) or name in {
                "AWS_PROFILE",
                "AWS_REGION",
            }:
                patch.delenv(name)
        env = {
            "STRATOFLOW_BACKEND": "aws",
            "STRATOFLOW_ENDPOINT_URL": url,
            "STRATOFLOW_REGION": "us-east-1",
            "STRATOFLOW_HOME": str(home),
            "STRATOFLOW_LOG_TO_CONSOLE": "false",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            **SWEEP_ENV,
        }
        for name, value in env.items():
            patch.setenv(name, value)
        get_settings.cache_clear()
        previous = set_process_services(None)
        platform = None
        try:
            resources.provision(boto3.Session(region_name="us-east-1"), endpoint_url=url)
            platform = get_platform()
            for pool in POOLS:
                provision_work_queue(
                    platform.backend.clients, platform.settings.queue_prefix, pool, "default"
                )
            deploy_project(project)
            yield Stack(url, dict(os.environ), home, project, ledger, logs, platform)
        finally:
            if platform is not None:
                platform.backend.close()
            set_process_services(previous)
            get_settings.cache_clear()


def pytest_report_header(config: Any) -> str:
    return f"chaos scale: {SCALE.name} (CHAOS_SCALE), seed {SCALE.seed} (CHAOS_SEED)"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section(f"chaos figures ({SCALE.name} scale, seed {SCALE.seed})")
    for test, values in FIGURES.items():
        shown = ", ".join(f"{k}={v}" for k, v in values.items())
        terminalreporter.write_line(f"{test}: {shown}")
    write_figures()
