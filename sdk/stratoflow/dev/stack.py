"""The embedded stack: emulator, resources, the local runtime and one on-prem poller."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import boto3

from stratoflow.context import set_process_services
from stratoflow.dev import DEV_HOME
from stratoflow.dev.event_sources import LambdaWorkerSource, StreamSource, scheduled_event
from stratoflow.dev.lambda_runtime import invoke
from stratoflow.emulator import emulator
from stratoflow.platform import Platform, get_platform
from stratoflow.resources import UI_URL_VARIABLE, ResourceNames, provision
from stratoflow.settings import get_settings
from stratoflow.ui.devserver import serve_ui

logger = logging.getLogger("stratoflow.dev")

GITIGNORE = "# Created by `strato dev`: everything in this directory is generated.\n*\n"
RUNTIME_STOP_SECONDS = 10.0
"""How long stopping waits for the round in progress (a tick, a stream batch, a Lambda
worker invocation) to end."""
POLLER_STOP_SECONDS = 15.0
"""How long stopping waits for the poller to hand its runs back and exit (it notices the
SIGTERM within its 1 s long poll) before killing it."""


def prepare_home(home: Path) -> None:
    """Create the stack's home. As pytest does for `.pytest_cache`, a home it creates (or
    one named `.stratoflow-dev`) gets a `.gitignore` of `*`: git, and tools that follow
    .gitignore such as ruff, leave the generated files (bundle copies, results) alone. An
    existing directory of another name is the user's, and is left as it is."""
    created = not home.exists()
    home.mkdir(parents=True, exist_ok=True)
    ignore = home / ".gitignore"
    if (created or home.name == DEV_HOME) and not ignore.exists():
        ignore.write_text(GITIGNORE)


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
                if not self._stop.is_set():
                    self.poll()
            except Exception:
                logger.exception("Local runtime round failed")
            self._stop.wait(self.poll_seconds)  # wakes at once on stop()
            clock += self.poll_seconds

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="stratoflow-dev", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = RUNTIME_STOP_SECONDS) -> None:
        """No tick or delivery starts after this; waits for the one in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            if self._thread.is_alive():
                logger.warning("The local runtime's round did not end in %g s", timeout)


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
        ui: bool = True,
        ui_port: int = 0,
    ) -> None:
        self.home = home
        self.tick_seconds = tick_seconds
        self.with_poller = poller
        self.poller_pool = poller_pool
        self.with_ui = ui
        self.ui_port = ui_port
        self.ui_url = ""
        """The UI's login link (`/login?token=...`), once it is up."""
        self.endpoint = ""
        self.runtime: LocalRuntime | None = None
        self.platform: Platform | None = None
        self.poller: subprocess.Popen[bytes] | None = None
        self.poller_log = home / "poller.log"
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
            **({UI_URL_VARIABLE: self.ui_url} if self.ui_url else {}),
        }

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def __enter__(self) -> LocalStack:
        try:
            prepare_home(self.home)
            self.endpoint = self._exit.enter_context(emulator(process_group=0))
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
            if self.with_ui:
                self._start_ui()
            if self.with_poller:
                self._start_poller()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start_ui(self) -> None:
        """The web UI on 127.0.0.1, the same handler as the API Lambda's; its login link
        carries a new random token (an operator session), and its cookies are not
        Secure (plain http on loopback)."""
        token = secrets.token_urlsafe(24)
        self._set_env({"STRATOFLOW_UI_LOGIN_TOKEN": token, "STRATOFLOW_UI_SECURE_COOKIES": "false"})
        get_settings.cache_clear()
        base = self._exit.enter_context(serve_ui(port=self.ui_port))
        self.ui_url = f"{base}/login?token={token}"

    def _start_poller(self) -> None:
        log = self._exit.enter_context(self.poller_log.open("ab"))
        self.poller = subprocess.Popen(
            [
                *(sys.executable, "-m", "stratoflow.cli", "worker", "start"),
                *("--pool", self.poller_pool, "--name", "dev-poller"),
                # A short long poll: it notices a stop within a second.
                *("--wait-seconds", "1"),
            ],
            env={
                **os.environ,
                "STRATOFLOW_LOG_TO_CONSOLE": "false",
                # Its runs cannot finish once the emulator stops: hand them back at once.
                "STRATOFLOW_WORKER_SHUTDOWN_GRACE_SECONDS": "0",
            },
            stdout=subprocess.DEVNULL,
            stderr=log,
            # Its own process group: a Ctrl-C reaches `strato dev` only, which stops the
            # pieces in order (the poller before the emulator it talks to).
            process_group=0,
        )

    def stop_runtime(self) -> None:
        """Stop the scheduler ticks and the event sources (nothing is printed by them
        after this returns)."""
        if self.runtime is not None:
            self.runtime.stop()

    def _stop_poller(self) -> None:
        if self.poller is None or self.poller.poll() is not None:
            return
        self.poller.send_signal(signal.SIGTERM)
        try:
            self.poller.wait(timeout=POLLER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            logger.warning("The poller did not stop in %g s; killing it", POLLER_STOP_SECONDS)
            self.poller.kill()
            self.poller.wait()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # In order: the tick loop and event sources, the poller, then the emulator.
        self.stop_runtime()
        self._stop_poller()
        if self.platform is not None:
            self.platform.backend.close()  # write what is still buffered
        set_process_services(None)
        self._exit.close()  # the poller's log, then the emulator
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
