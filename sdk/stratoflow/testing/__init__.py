"""Unit-test your flows: an isolated backend, result store and clock per test.

    from stratoflow.testing import stratoflow_test_harness

    def test_my_flow():
        with stratoflow_test_harness() as harness:
            assert my_flow(3) == 9
            run = harness.last_flow_run()
            assert run.state.is_completed()
            assert [t.state.name for t in harness.task_runs(run.id)] == ["Completed"]

Retry delays do not wait: the harness uses a FakeClock that records each sleep.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from stratoflow.backends.memory import MemoryBackend
from stratoflow.cache import LocalFileCacheStore
from stratoflow.clock import Clock, FakeClock
from stratoflow.context import Services, set_process_services
from stratoflow.models import FlowRun, LogEntry, TaskRun
from stratoflow.results import LocalFileSystemResultStore


@dataclass
class TestHarness:
    __test__ = False  # not a pytest test class

    services: Services
    directory: Path

    @property
    def backend(self) -> MemoryBackend:
        assert isinstance(self.services.backend, MemoryBackend)
        return self.services.backend

    @property
    def clock(self) -> Clock:
        return self.services.clock

    def flow_runs(self) -> list[FlowRun]:
        """Every flow run, newest first."""
        return self.services.backend.list_flow_runs()

    def last_flow_run(self) -> FlowRun:
        runs = [r for r in self.flow_runs() if r.parent_flow_run_id is None]
        if not runs:
            raise AssertionError("No flow has run inside this harness yet.")
        return runs[0]

    def task_runs(self, flow_run_id: str | None = None) -> list[TaskRun]:
        """The task runs of a flow run (default: the last one), in creation order."""
        run_id = flow_run_id or self.last_flow_run().id
        return self.services.backend.list_task_runs(run_id)

    def logs(self, flow_run_id: str | None = None) -> list[LogEntry]:
        run_id = flow_run_id or self.last_flow_run().id
        return self.services.backend.read_logs(run_id)

    def log_messages(self, flow_run_id: str | None = None) -> list[str]:
        return [entry.message for entry in self.logs(flow_run_id)]


@contextlib.contextmanager
def stratoflow_test_harness(*, clock: Clock | None = None) -> Iterator[TestHarness]:
    """Run flows against fresh, private services; restores the previous ones on exit."""
    directory = Path(tempfile.mkdtemp(prefix="stratoflow-test-"))
    services = Services(
        backend=MemoryBackend(),
        clock=clock or FakeClock(),
        result_store=LocalFileSystemResultStore(directory / "results"),
        cache_store=LocalFileCacheStore(directory / "cache"),
    )
    previous = set_process_services(services)
    try:
        yield TestHarness(services=services, directory=directory)
    finally:
        set_process_services(previous)
        shutil.rmtree(directory, ignore_errors=True)
