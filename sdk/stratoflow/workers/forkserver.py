"""The poller's fork server: one long-lived process that has imported what a flow run
needs, and forks a fresh process for each run.

    python -m stratoflow.workers.forkserver FD [--preload M,M...] [--service-models S,S...]

Starting Python and importing stratoflow, boto3 and pydantic costs 0.3 to 0.45 s of CPU per
process; a fork of a process that did it once costs a few milliseconds. Each run still
gets a process of its own (a crash, an `os._exit` or a SIGKILL ends that run only), and
what it sees of memory is the server's state after importing, never another run's: the
server runs no flow and loads no user code.

FD is this end of a socket pair whose other end the poller holds
(`stratoflow.workers.forkspawn`). Requests and replies are JSON lines:

    poller -> server  {"op": "spawn", "token": 7, "argv": ["-m", "stratoflow.cli", ...]}
                      {"op": "signal", "pid": 1234, "signal": 15}
    server -> poller  {"op": "ready", "pid": 1200}        once, after importing
                      {"op": "started", "token": 7, "pid": 1234}
                      {"op": "failed", "token": 7, "error": "..."}
                      {"op": "exited", "pid": 1234, "code": -9}
                      {"op": "error", "error": "..."}      cannot serve; the server exits

`argv` is a command line without its interpreter, and only `-m MODULE ARGS...`: the
child is then what `python -m MODULE ARGS...` would be, exit code included (`code`
follows `subprocess.Popen.returncode`: negative for a signal). The server sends a
signal only to a child it has not reaped yet, so a pid never reaches a reused process.

The server stays single-threaded and holds no connection, client or credentials: a fork
copies one thread only, and a child must not share a socket or a lock with its siblings.
Each child starts a session of its own (like the spawned processes), is killed by the
kernel if the server dies (PR_SET_PDEATHSIG, so no run outlives the supervision of its
exit code), reseeds `random`, and creates its own boto3 sessions and clients.

When the poller goes away (its end of the socket closes) the server stops forking but
keeps reaping its running children, and exits after the last one: a poller that died
does not take its running flow runs with it.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import gc
import importlib
import json
import os
import random
import runpy
import selectors
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

FLOW_RUN_MODULES = (
    # What `strato flow-run execute` imports, directly or on its way to running a flow.
    "stratoflow.cli.app",
    "stratoflow.workers.execute",
    "stratoflow.backends.aws",
    "stratoflow.platform",
    "stratoflow.deployments.bundles",
    "stratoflow.deployments.schedule_marks",
    "stratoflow.deployments.store",
    "stratoflow.workers.queues",
    "stratoflow.sweeps",
    "stratoflow.workers.warm",
    "concurrent.futures.thread",
    "encodings.idna",  # a connection to a host name
)
SERVICE_MODELS = ("dynamodb", "s3", "sqs", "logs")
"""The AWS services a flow run's process calls; their botocore models are parsed once."""

PR_SET_PDEATHSIG = 1
"""prctl(2): the signal a process gets when its parent dies (Linux)."""


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


class Lines:
    """Splits what a stream delivers into JSON messages, one per line."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buffer += data
        *complete, self._buffer = self._buffer.split(b"\n")
        return [json.loads(line) for line in complete if line.strip()]


@dataclass
class Server:
    sock: socket.socket
    children: set[int] = field(default_factory=set)
    poller_gone: bool = False

    def send(self, message: dict[str, Any]) -> None:
        if self.poller_gone:
            return
        try:
            self.sock.sendall(encode(message))
        except OSError:  # the poller died: nobody to tell any more
            self.poller_gone = True

    def serve(self) -> list[str] | None:
        """Serve until the poller is gone and no child runs (returns None). In a forked
        child, returns the command line it is to run."""
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        # SIGCHLD wakes the select below through the pipe (a handler alone would not).
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(wake_write)
        lines = Lines()
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_READ)
            selector.register(wake_read, selectors.EVENT_READ)
            while not (self.poller_gone and not self.children):
                for key, _ in selector.select(timeout=1.0):
                    if key.fileobj == wake_read:
                        _drain(wake_read)
                        continue
                    try:
                        data = self.sock.recv(65536)
                    except OSError:  # reset: the same as an end of stream
                        data = b""
                    if not data:
                        self.poller_gone = True
                        selector.unregister(self.sock)
                        continue
                    for request in lines.feed(data):
                        argv = self.handle(request)
                        if argv is not None:  # in the forked child
                            _become_child(self.sock, (wake_read, wake_write))
                            return argv
                self.reap()
        return None

    def handle(self, request: dict[str, Any]) -> list[str] | None:
        op = request.get("op")
        if op == "spawn":
            return self.fork(int(request["token"]), [str(a) for a in request["argv"]])
        if op == "signal":
            pid = int(request["pid"])
            if pid in self.children:  # not reaped: the pid is still this child's
                with contextlib.suppress(ProcessLookupError):  # it exited: reap() says so
                    os.kill(pid, int(request["signal"]))
        else:
            self.send({"op": "error", "error": f"unknown request {op!r}"})
        return None

    def fork(self, token: int, argv: list[str]) -> list[str] | None:
        if len(argv) < 2 or argv[0] != "-m":
            self.send({"op": "failed", "token": token, "error": f"not `-m MODULE`: {argv}"})
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:
            self.send({"op": "failed", "token": token, "error": str(exc)})
            return None
        if pid == 0:
            return argv
        self.children.add(pid)
        self.send({"op": "started", "token": token, "pid": pid})
        return None

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            self.children.discard(pid)
            self.send({"op": "exited", "pid": pid, "code": os.waitstatus_to_exitcode(status)})


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _become_child(sock: socket.socket, wake: tuple[int, int]) -> None:
    """In a forked child, before it runs its command: nothing of the server's stays."""
    server = os.getppid()
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    sock.close()
    for fd in wake:
        os.close(fd)
    # A session of its own: a signal to the server's group never reaches a run.
    os.setsid()
    die_with_parent(server)
    # CPython reseeds `random` after a fork too; explicit, as no two runs may share it.
    random.seed()


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when its parent (the server) dies: its exit code would
    reach nobody, so its run would neither be supervised nor marked Crashed at once."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the server died before the line above
        os._exit(1)


def preload(modules: Sequence[str], service_models: Sequence[str]) -> None:
    """Import what the children need and parse botocore's models of their services."""
    for name in modules:
        importlib.import_module(name)
    if service_models:
        # Imported here, not at the top: the module preloads only what it is asked to.
        from stratoflow.backends.aws.clients import preload_service_models

        preload_service_models(service_models)
    # Keep what was imported out of the collector's way: a child's collections then do
    # not touch (and copy) the server's pages.
    gc.collect()
    gc.freeze()


def parse_args(args: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m stratoflow.workers.forkserver")
    parser.add_argument("fd", type=int, help="this end of the poller's socket pair")
    parser.add_argument("--preload", default=",".join(FLOW_RUN_MODULES))
    parser.add_argument("--service-models", default=",".join(SERVICE_MODELS))
    return parser.parse_args(args)


def main(args: Sequence[str]) -> int:
    """The server: 0 once the poller is gone and every child ended, 1 if it could not
    serve. (A forked child never returns from here.)"""
    options = parse_args(args)
    sock = socket.socket(fileno=options.fd)
    server = Server(sock)
    try:
        preload(
            [m for m in options.preload.split(",") if m],
            [s for s in options.service_models.split(",") if s],
        )
    except Exception as exc:  # noqa: BLE001 - told to the poller, which spawns processes instead
        traceback.print_exc()
        server.send({"op": "error", "error": f"preloading failed: {exc!r}"})
        return 1
    if threading.active_count() != 1:
        names = ", ".join(t.name for t in threading.enumerate())
        server.send({"op": "error", "error": f"threads started while preloading: {names}"})
        return 1
    server.send({"op": "ready", "pid": os.getpid()})
    argv = server.serve()
    if argv is not None:
        run_child(argv)  # in a forked child: does not return
    return 0


def run_child(argv: list[str]) -> NoReturn:
    """In a forked child: be `python -m MODULE ARGS...`, and exit as the interpreter
    would (the exit code of a SystemExit, an uncaught exception's traceback and 1,
    KeyboardInterrupt's death by SIGINT; non-daemon threads joined, atexit handlers run,
    standard streams flushed) but without tearing the interpreter down: that would
    touch, and so copy, every page inherited from the server (40 ms of CPU a run).
    multiprocessing's forked processes end the same way."""
    module, *rest = argv[1:]
    sys.argv = [module, *rest]
    code = 0
    interrupted = False
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exit_code(exc.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        interrupted = True
    except BaseException:  # noqa: BLE001 - as the interpreter does: printed, exit code 1
        sys.excepthook(*sys.exc_info())
        code = 1
    threading._shutdown()  # type: ignore[attr-defined]  # what Py_Finalize does first
    atexit._run_exitfuncs()  # and next
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed or broken stream: as Python does
            stream.flush()
    if interrupted:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code)


def exit_code(value: object) -> int:
    """The exit status of `SystemExit(value)`, as the interpreter sets it."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
