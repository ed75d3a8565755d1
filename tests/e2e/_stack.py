"""The emulated installation the end-to-end tests run against: moto's server in its own
process, this process's settings pointed at it (and every child process's, through the
environment), the state table and queues provisioned. Each test module makes its own,
with the project it needs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from stratoflow import resources
from stratoflow.context import set_process_services
from stratoflow.emulator import emulator
from stratoflow.settings import get_settings


@contextlib.contextmanager
def emulated_installation(
    home: Path, *, prepare: Callable[[pytest.MonkeyPatch], None] | None = None
) -> Iterator[str]:
    """Start the emulator, point STRATOFLOW_* and AWS_* at it, provision; yields its URL.
    `prepare(patch)` runs before the settings are read (more variables, sys.path)."""
    with emulator() as url, pytest.MonkeyPatch.context() as patch:
        env = {
            "STRATOFLOW_BACKEND": "aws",
            "STRATOFLOW_ENDPOINT_URL": url,
            "STRATOFLOW_REGION": "us-east-1",
            "STRATOFLOW_HOME": str(home),
            "STRATOFLOW_LOG_TO_CONSOLE": "false",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        for name in list(os.environ):
            if name.startswith(("STRATOFLOW_", "AWS_ENDPOINT_URL")):
                patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        if prepare is not None:
            prepare(patch)
        get_settings.cache_clear()
        previous = set_process_services(None)
        try:
            resources.provision(boto3.Session(region_name="us-east-1"), endpoint_url=url)
            yield url
        finally:
            set_process_services(previous)
            get_settings.cache_clear()
