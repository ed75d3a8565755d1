"""An emulated installation whose AWS calls are counted, for the benchmarks that run
flows or ticks in their own process (bench/durable.py, bench/idle.py)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from bench.calls import CallLog, Router
from stratoflow.emulator import emulator


@dataclass
class Counted:
    endpoint: str
    router: Router
    """Point `router.target` at a CallLog to count what follows; `scratch` otherwise."""
    scratch: CallLog
    services: Any
    platform: Any


@contextlib.contextmanager
def counted_installation(home: Path) -> Iterator[Counted]:
    """The emulator, this process's settings pointed at it (children inherit them), the
    resources provisioned, and services whose session's calls go through a Router."""
    with emulator() as endpoint:
        os.environ.update(
            STRATOFLOW_BACKEND="aws",
            STRATOFLOW_ENDPOINT_URL=endpoint,
            STRATOFLOW_HOME=str(home),
            STRATOFLOW_LOGGING_LEVEL="WARNING",
            STRATOFLOW_LOG_TO_CONSOLE="false",
        )
        # Imported once the environment names the emulator: settings are read at import.
        from stratoflow.backends.aws import build_aws_services
        from stratoflow.context import set_process_services
        from stratoflow.platform import build_platform
        from stratoflow.resources import provision
        from stratoflow.settings import load_settings

        session = boto3.Session(region_name="us-east-1")
        provision(session, endpoint_url=endpoint)
        scratch = CallLog()
        router = Router(scratch)
        router.register(session.events)
        settings = load_settings()
        services = build_aws_services(settings, session=session)
        set_process_services(services)
        yield Counted(endpoint, router, scratch, services, build_platform(services, settings))
