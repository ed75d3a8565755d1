"""Warm processes: a flow run's process, started before its run arrives.

Starting Python and importing stratoflow, boto3 and pydantic takes most of a second;
a warm process has done it already and waits for a flow run id on its stdin (and on the
next line the poller's handoff, stratoflow.workers.handoff, or an empty line), so a run
starts as soon as it is claimed. Each process still runs exactly one flow run.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping

from stratoflow.workers.processes import ChildProcess, handoff_of, popen_spawn

FROM_STDIN = "-"
"""`strato flow-run execute -`: read the flow run id from stdin (after warming up)."""
DEFAULT_SPARES = 2


def warm_command() -> list[str]:
    return [sys.executable, "-m", "stratoflow.cli", "flow-run", "execute", FROM_STDIN]


class WarmSpawner:
    """Hands each run to a process started in advance; keeps `spares` of them ready."""

    def __init__(self, spares: int = DEFAULT_SPARES) -> None:
        self.spares = spares
        self._ready: deque[subprocess.Popen[bytes]] = deque()
        self._env: dict[str, str] | None = None
        self._lock = threading.Lock()

    def _top_up(self) -> None:
        assert self._env is not None
        while len(self._ready) < self.spares:
            self._ready.append(
                subprocess.Popen(
                    warm_command(), env=self._env, stdin=subprocess.PIPE, start_new_session=True
                )
            )

    def __call__(self, command: list[str], env: Mapping[str, str]) -> ChildProcess:
        flow_run_id = command[-1]
        handoff = handoff_of(command) or ""
        with self._lock:
            if self._env != dict(env):
                self._discard()
                self._env = dict(env)
            process: ChildProcess | None = None
            while self._ready and process is None:
                spare = self._ready.popleft()
                if spare.poll() is None and spare.stdin is not None:
                    try:
                        spare.stdin.write(f"{flow_run_id}\n{handoff}\n".encode())
                        spare.stdin.close()
                    except BrokenPipeError:  # it died since poll(): the next spare
                        spare.kill()
                        spare.wait(timeout=10)
                        continue
                    process = spare
            if process is None:
                process = popen_spawn(command, env)
            self._top_up()
        return process

    def prime(self, env: Mapping[str, str]) -> None:
        """Start the spares now, before the first run arrives."""
        with self._lock:
            self._env = dict(env)
            self._top_up()

    def _discard(self) -> None:
        while self._ready:
            spare = self._ready.popleft()
            if spare.poll() is None:
                spare.kill()
                spare.wait(timeout=10)

    def close(self) -> None:
        with self._lock:
            self._discard()
