"""The embedded stack: emulator, resources, the local runtime and one on-prem poller."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import boto3

from stratoflow.context import set_process_services
from stratoflow.dev.event_sources import LambdaWorkerSource, StreamSource, scheduled_event
from stratoflow.dev.lambda_runtime import invoke
from stratoflow.emulator import emulator
from stratoflow.platform import Platform, get_platform
from stratoflow.resources import ResourceNames, provision
from stratoflow.settings import get_settings

logger = logging.getLogger("stratoflow.dev")


@dataclass
class LocalRuntime:
    """Drives the Lambdas as AWS would: the scheduler every `tick_seconds`, the stream
    and the Lambda work queues every `poll_seconds`."""

    platform: Platform
    tick_seconds: float = 5.0
    poll_seconds: float = 0.5
    ticks: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.stream = StreamSource(self.platform, _invoke)
        self.lambda_worker = LambdaWorkerSource(self.platform, _invoke)

    def tick(self) -> None:
        invoke("scheduler", scheduled_event(self.platform.services.clock.now()), timeout_seconds=60)
        self.ticks += 1

    def poll(self) -> int:
        return self.stream.poll() + self.lambda_worker.poll()

    def _loop(self) -> None:
        next_tick = 0.0
        clock = 0.0
        while not self._stop.is_set():
            try:
                if clock >= next_tick:
                    self.tick()
                    next_tick = clock + self.tick_seconds
                self.poll()
            except Exception:
                logger.exception("Local runtime round failed")
            self._stop.wait(self.poll_seconds)
            clock += self.poll_seconds

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="stratoflow-dev", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def _invoke(name: str, event: dict[str, object]) -> object:
    return invoke(name, event)


class LocalStack:
    """`with LocalStack(...) as stack:` everything runs; leaving the block stops it all."""

    def __init__(
        self,
        *,
        home: Path,
        tick_seconds: float = 5.0,
        poller: bool = True,
        poller_pool: str = "default",
    ) -> None:
        self.home = home
        self.tick_seconds = tick_seconds
        self.with_poller = poller
        self.poller_pool = poller_pool
        self.endpoint = ""
        self.runtime: LocalRuntime | None = None
        self.platform: Platform | None = None
        self.poller: subprocess.Popen[bytes] | None = None
        self._exit = contextlib.ExitStack()
        self._saved_env: dict[str, str | None] = {}

    def environment(self) -> dict[str, str]:
        """What another terminal exports to talk to this stack."""
        names = ResourceNames.from_settings(get_settings())
        return {
            "STRATOFLOW_BACKEND": "aws",
            "STRATOFLOW_ENDPOINT_URL": self.endpoint,
            "STRATOFLOW_REGION": "us-east-1",
            "STRATOFLOW_HOME": str(self.home),
            "STRATOFLOW_TABLE_NAME": names.table,
            "STRATOFLOW_RESULTS_BUCKET": names.results_bucket,
            "STRATOFLOW_CODE_BUCKET": names.code_bucket,
            "STRATOFLOW_RUNS_LOG_GROUP": names.runs_log_group,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def __enter__(self) -> LocalStack:
        try:
            self.endpoint = self._exit.enter_context(emulator())
            self._set_env(
                {
                    "STRATOFLOW_BACKEND": "aws",
                    "STRATOFLOW_ENDPOINT_URL": self.endpoint,
                    "STRATOFLOW_HOME": str(self.home),
                }
            )
            get_settings.cache_clear()
            self._set_env(self.environment())
            set_process_services(None)  # rebuilt from the new settings on first use
            provision(boto3.Session(region_name="us-east-1"), endpoint_url=self.endpoint)
            self.platform = platform = get_platform()
            self.runtime = LocalRuntime(platform, tick_seconds=self.tick_seconds)
            self.runtime.start()
            if self.with_poller:
                self.poller = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "stratoflow.cli",
                        "worker",
                        "start",
                        "--pool",
                        self.poller_pool,
                        "--name",
                        "dev-poller",
                    ],
                    env={**os.environ, "STRATOFLOW_LOG_TO_CONSOLE": "false"},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.poller is not None and self.poller.poll() is None:
            self.poller.send_signal(signal.SIGTERM)
            try:
                self.poller.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.poller.kill()
        if self.runtime is not None:
            self.runtime.stop()
        if self.platform is not None:
            self.platform.backend.close()  # write what is still buffered
        set_process_services(None)
        self._exit.close()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
