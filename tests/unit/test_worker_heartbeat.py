"""A running flow run's heartbeat (stratoflow.workers.heartbeat) on the memory backend."""

from __future__ import annotations

from datetime import UTC, datetime

from stratoflow.backends.memory import MemoryBackend
from stratoflow.clock import FakeClock
from stratoflow.models import FlowRun
from stratoflow.states import Cancelling, Pending, Running, Scheduled
from stratoflow.workers.heartbeat import Heartbeat

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class CountingReads(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[bool] = []

    def read_flow_run(self, flow_run_id: str, *, consistent: bool = True) -> FlowRun:
        self.reads.append(consistent)
        return super().read_flow_run(flow_run_id)

    def record_flow_run_heartbeat(self, run: FlowRun, at: datetime) -> None:
        super().record_flow_run_heartbeat(run, at)
        self.reads.pop()  # the memory backend's own lookup, not the beat's read


def test_a_beat_reads_the_run_eventually_consistent_and_sees_a_cancellation() -> None:
    backend = CountingReads()
    run = backend.create_flow_run(FlowRun(id="run-1", name="r", flow_name="f", state=Scheduled()))
    for state in (Pending(), Running()):
        backend.set_flow_run_state(run.id, state)
    heartbeat = Heartbeat(backend, run.id, FakeClock(NOW), interval=10)
    backend.reads.clear()
    heartbeat.beat()
    assert backend.reads == [False]
    assert not heartbeat.cancelled.is_set()
    assert backend.read_flow_run(run.id).heartbeat == NOW
    backend.set_flow_run_state(run.id, Cancelling())
    backend.reads.clear()
    heartbeat.beat()
    assert backend.reads == [False]
    assert heartbeat.cancelled.is_set()
