"""The embedded AWS emulator: moto's server in its own process on a free loopback port.

Used by end-to-end tests, benchmarks and the local stack. A separate process keeps the
emulator's CPU time out of the measured process, as a real AWS endpoint would be.
Needs moto's server (`pip install 'moto[server]'`, part of stratoflow's dev extra).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator


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
def emulator() -> Iterator[str]:
    """Start the emulator; yields its endpoint URL. Sets dummy AWS credentials for the
    duration (the emulator accepts any), and restores the previous ones."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
