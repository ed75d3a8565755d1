"""How the poller starts its flow run processes: forked by its fork server
(`stratoflow.workers.forkserver`), or spawned as fresh Python processes kept warm
(`stratoflow.workers.warm`).

`STRATOFLOW_WORKER_START_METHOD` chooses: `forkserver` (the default; Linux only, other
systems use `spawn`) or `spawn`. With the fork server, a run whose process the server
cannot start (it is not ready, it died and cannot be restarted, it does not answer) gets a
fresh process instead, with a warning: a run never waits on a broken server.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from stratoflow.workers.forkserver import FLOW_RUN_MODULES, SERVICE_MODELS, Lines, encode
from stratoflow.workers.processes import ChildProcess, Spawn, popen_spawn
from stratoflow.workers.warm import WarmSpawner

logger = logging.getLogger("stratoflow.workers")

READY_TIMEOUT = 60.0
"""A server still importing after this long is given up (a loaded host takes seconds)."""
REPLY_TIMEOUT = 30.0
"""A fork is a few milliseconds: a server silent for this long is not counted on."""
RESTART_AFTER = 30.0
"""After a server failed to start, runs get fresh processes for this long."""


class ForkServerError(OSError):
    """The fork server could not start a process (its reason in the message)."""


class ForkedProcess:
    """A flow run's process forked by the server (what Popen is for a spawned one): its
    exit code comes from the server, which alone may signal it (it is its parent)."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._server = server

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        self._server.signal(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        self._server.signal(self.pid, signal.SIGKILL)


class ForkServer:
    """One server process and the poller's end of its socket; a thread reads its replies."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        preload: Sequence[str] = FLOW_RUN_MODULES,
        service_models: Sequence[str] = SERVICE_MODELS,
    ) -> None:
        self.env = dict(env)
        ours, theirs = socket.socketpair()
        self._sock = ours
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "stratoflow.workers.forkserver",
                    str(theirs.fileno()),
                    "--preload",
                    ",".join(preload),
                    "--service-models",
                    ",".join(service_models),
                ],
                env=self.env,
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                # Like the spawned processes: a Ctrl-C in the worker's terminal reaches
                # the worker only, which decides what happens to its runs.
                start_new_session=True,
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        self.error: str | None = None
        self._ready = threading.Event()
        self._dead = threading.Event()
        self._closing = False
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._tokens = itertools.count(1)
        self._replies: dict[int, dict[str, Any]] = {}
        self._waiting: dict[int, threading.Event] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._reader = threading.Thread(
            target=self._read, name="stratoflow-forkserver-reader", daemon=True
        )
        self._reader.start()

    @property
    def alive(self) -> bool:
        return not self._dead.is_set()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> bool:
        """True once the server has imported everything; False if it failed or died."""
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self._dead.is_set() or time.monotonic() >= deadline:
                return False
        return self.alive

    def spawn(self, argv: list[str], timeout: float = REPLY_TIMEOUT) -> ForkedProcess:
        """Fork a process running `python ARGV` (`-m MODULE ARGS...`)."""
        if self._dead.is_set():
            raise ForkServerError("the fork server died")
        token = next(self._tokens)
        answered = threading.Event()
        with self._lock:
            self._waiting[token] = answered
        try:
            self._send({"op": "spawn", "token": token, "argv": argv})
            answered.wait(timeout)
        finally:
            with self._lock:
                self._waiting.pop(token, None)
                reply = self._replies.pop(token, None)
                if reply is None:
                    # Started later, if ever: _receive kills what nobody waits for.
                    self._replies[token] = {"op": "abandoned"}
        if reply is None:
            raise ForkServerError(
                "the fork server died" if self._dead.is_set() else "the fork server is silent"
            )
        child = reply.get("child")
        if not isinstance(child, ForkedProcess):
            raise ForkServerError(f"the fork server could not fork: {reply.get('error')}")
        return child

    def signal(self, pid: int, signum: int) -> None:
        # The server gone, the kernel killed its children with it: nothing to signal.
        with contextlib.suppress(ForkServerError):
            self._send({"op": "signal", "pid": pid, "signal": int(signum)})

    def close(self, timeout: float = 10.0) -> None:
        """Let the server exit (after its running children), and wait for it."""
        self._closing = True
        with contextlib.suppress(OSError):  # already gone
            self._sock.shutdown(socket.SHUT_WR)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout)
        self._sock.close()

    # The poller's side of the protocol

    def _send(self, message: dict[str, Any]) -> None:
        try:
            with self._send_lock:
                self._sock.sendall(encode(message))
        except OSError as exc:
            raise ForkServerError(f"the fork server is gone: {exc}") from exc

    def _read(self) -> None:
        lines = Lines()
        try:
            while data := self._sock.recv(65536):
                for message in lines.feed(data):
                    self._receive(message)
        except OSError:
            pass  # the socket closed under us (close()): the same as an end of stream
        finally:
            self._gone()

    def _receive(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "ready":
            self._ready.set()
        elif op in ("started", "failed"):
            token = int(message["token"])
            with self._lock:
                if op == "started":
                    # Known before anyone waits on it: its "exited" may come next.
                    pid = int(message["pid"])
                    message["child"] = self._children[pid] = ForkedProcess(self, pid)
                abandoned = self._replies.pop(token, None) is not None
                if not abandoned:
                    self._replies[token] = message
                    waiting = self._waiting.get(token)
            if abandoned and op == "started":
                self.signal(int(message["pid"]), signal.SIGKILL)
            elif not abandoned and waiting is not None:
                waiting.set()
        elif op == "exited":
            with self._lock:
                child = self._children.pop(int(message["pid"]), None)
            if child is not None:
                child.returncode = int(message["code"])
        elif op == "error":
            self.error = str(message.get("error"))
            logger.error("The fork server cannot serve: %s", self.error)

    def _gone(self) -> None:
        """The server's end closed: it exited, and the kernel killed the children it
        still had (PR_SET_PDEATHSIG). Their runs end as killed processes do."""
        self._dead.set()
        with self._lock:
            orphans = list(self._children.values())
            self._children.clear()
            waiting = list(self._waiting.values())
            self._replies.clear()  # no answer will come: the waiting get ForkServerError
        for child in orphans:
            child.returncode = -signal.SIGKILL
        for event in waiting:
            event.set()
        try:
            code = self.process.wait(10)
        except subprocess.TimeoutExpired:
            code = None
        if not self._closing:
            logger.warning(
                "The fork server (process %s) exited with %s%s%s",
                self.process.pid,
                code,
                f"; its {len(orphans)} running flow run process(es) were killed" if orphans else "",
                f": {self.error}" if self.error else "",
            )


class ForkServerSpawner:
    """The poller's Spawn with a fork server: starts it (at `prime`, or for the first
    run), restarts it after it died, and starts a fresh process for a run it cannot
    serve."""

    def __init__(
        self,
        *,
        preload: Sequence[str] = FLOW_RUN_MODULES,
        service_models: Sequence[str] = SERVICE_MODELS,
        ready_timeout: float = READY_TIMEOUT,
        reply_timeout: float = REPLY_TIMEOUT,
        restart_after: float = RESTART_AFTER,
    ) -> None:
        self.preload = tuple(preload)
        self.service_models = tuple(service_models)
        self.ready_timeout = ready_timeout
        self.reply_timeout = reply_timeout
        self.restart_after = restart_after
        self.server: ForkServer | None = None
        self._failed_at: float | None = None
        self._lock = threading.Lock()

    def prime(self, env: Mapping[str, str]) -> None:
        """Start the server now (without waiting): it imports while the poller starts."""
        with self._lock:
            if self.server is None:
                self._start(env)

    def __call__(self, command: list[str], env: Mapping[str, str]) -> ChildProcess:
        argv = forkable(command)
        if argv is not None:
            server = self._server(env)
            if server is not None:
                try:
                    return server.spawn(argv, self.reply_timeout)
                except ForkServerError as exc:
                    logger.warning("%s: starting a fresh process instead", exc)
                    if server.alive:  # silent: the next runs do not wait for it either
                        with self._lock:
                            self._failed_at = time.monotonic()
        return popen_spawn(command, env)

    def close(self) -> None:
        with self._lock:
            server, self.server = self.server, None
        if server is not None:
            server.close()

    def _server(self, env: Mapping[str, str]) -> ForkServer | None:
        """The running, ready server for `env`, (re)started if need be; None when there is
        none to count on now."""
        with self._lock:
            if self.server is not None and self.server.env != dict(env):
                return None  # another environment than the server's: a fresh process
            if self._failed_at is not None and (
                time.monotonic() - self._failed_at < self.restart_after
            ):
                return None
            if self.server is None or not self.server.alive:
                if self.server is not None:
                    logger.warning("Restarting the fork server")
                self._start(env)
            server = self.server
            if server is None:
                return None
            if server.wait_ready(self.ready_timeout):
                self._failed_at = None
                return server
            self._failed_at = time.monotonic()
            logger.warning(
                "The fork server is not ready (%s): flow runs get fresh processes for the "
                "next %g s",
                server.error or "it did not answer in time",
                self.restart_after,
            )
            # Never ready, so no run of its own: a new one is started next time.
            server.process.kill()
            return None

    def _start(self, env: Mapping[str, str]) -> None:
        try:
            self.server = ForkServer(env, preload=self.preload, service_models=self.service_models)
        except OSError:
            self._failed_at = time.monotonic()
            self.server = None
            logger.warning("Could not start the fork server", exc_info=True)


def forkable(command: Sequence[str]) -> list[str] | None:
    """`python -m MODULE ARGS...` as the server's argv; None for another command."""
    if len(command) >= 3 and command[0] == sys.executable and command[1] == "-m":
        return list(command[1:])
    return None


def fork_available() -> bool:
    """The fork server's needs: fork without exec, and a child that dies with its
    parent (Linux's PR_SET_PDEATHSIG). macOS forks, but its system libraries are not
    safe to use in a forked child (what made multiprocessing default to spawn there)."""
    return sys.platform == "linux" and hasattr(os, "fork")


def spawner_for(start_method: str) -> Spawn:
    """The Spawn of a poller for STRATOFLOW_WORKER_START_METHOD."""
    if start_method == "forkserver":
        if fork_available():
            return ForkServerSpawner()
        logger.info("No fork server on %s: flow runs start as fresh processes", sys.platform)
    return WarmSpawner()
