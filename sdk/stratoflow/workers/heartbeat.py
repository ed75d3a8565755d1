"""A running flow run's heartbeat: proof of life for the zombie sweep, and the way an
operator's cancellation reaches the process running the run."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from stratoflow.backends.base import Backend
from stratoflow.clock import Clock
from stratoflow.engine.flow_engine import signal_cancellation
from stratoflow.exceptions import ObjectNotFound
from stratoflow.states import StateType

logger = logging.getLogger("stratoflow.workers")


class Heartbeat:
    """While in its `with` block: every `interval` seconds, check whether the run was set
    to Cancelling and record a heartbeat (an item of its own: backends/aws/heartbeats.py)."""

    def __init__(
        self, backend: Backend, flow_run_id: str, clock: Clock, *, interval: float
    ) -> None:
        self.backend = backend
        self.flow_run_id = flow_run_id
        self.clock = clock
        self.interval = interval
        self.cancelled = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"heartbeat-{flow_run_id[:8]}", daemon=True
        )

    def beat(self) -> None:
        # Eventually consistent (half the read units, every beat of every running run): a
        # cancellation a stale read misses is seen at the next beat (the worker's own
        # check sees it meanwhile), and the beat needs only the run's labels.
        run = self.backend.read_flow_run(self.flow_run_id, consistent=False)
        state = run.state
        if state is not None and state.type is StateType.CANCELLING and not self.cancelled.is_set():
            self.cancelled.set()
            signal_cancellation(self.flow_run_id)
        self.backend.record_flow_run_heartbeat(run, self.clock.now())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except ObjectNotFound:
                return
            except Exception:
                logger.warning("Heartbeat of flow run %s failed", self.flow_run_id, exc_info=True)

    def __enter__(self) -> Heartbeat:
        # No beat at once: the Running state the engine writes next is the run's first
        # proof of life (the zombie sweep counts its time), and a beat costs a write.
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)
