"""The embedded AWS emulator: moto's server in its own process on a free loopback port.

Used by end-to-end tests, benchmarks and the local stack. A separate process keeps the
emulator's CPU time out of the measured process, as a real AWS endpoint would be.
Needs moto's server (`pip install 'moto[server]'`, part of stratoflow's dev extra).

moto's server answers requests in threads and applies a DynamoDB request without a lock,
so two conditional writes of the same item could both pass their condition (two workers
both claiming one run). DynamoDB applies each conditional write atomically; the emulator
(`python -m stratoflow.emulator`) does too by handling DynamoDB requests one at a time.
SQS, S3 and the others stay concurrent (a long poll must not block the rest).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from typing import Any


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_up(endpoint: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"The emulator did not start at {endpoint}") from None
            time.sleep(0.1)


@contextlib.contextmanager
def emulator(*, process_group: int | None = None) -> Iterator[str]:
    """Start the emulator; yields its endpoint URL. Sets dummy AWS credentials for the
    duration (the emulator accepts any), and restores the previous ones.

    `process_group=0` starts it in a process group of its own: a Ctrl-C in the terminal
    then reaches only its parent, which stops it last, after what still talks to it."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "stratoflow.emulator", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        process_group=process_group,
    )
    previous = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    try:
        _wait_until_up(endpoint)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def serialize_dynamodb(app: WsgiApp) -> WsgiApp:
    """Handle DynamoDB (and DynamoDB Streams) requests one at a time: each conditional
    write is then checked and applied atomically, as DynamoDB does."""
    lock = threading.Lock()

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB"):
            with lock:
                return list(app(environ, start_response))
        return app(environ, start_response)

    return serve


def main(argv: list[str] | None = None) -> None:
    """`python -m stratoflow.emulator [-H HOST] [-p PORT]`: moto's server, with DynamoDB
    requests serialized."""
    import argparse

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(prog="python -m stratoflow.emulator")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto.server does
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        serialize_dynamodb(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
