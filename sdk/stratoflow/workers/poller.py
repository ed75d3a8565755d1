"""The on-prem poller (`strato worker start`): long-polls a work pool's SQS queues over
outbound HTTPS and runs each flow run in its own process.

One loop receives messages, highest-priority queue first, never more than it has free
slots; a supervisor (a thread, or the same loop in tests) watches the processes: it
extends the visibility of their messages, kills a process whose run was set to
Cancelling, marks a run Crashed when its process died before the run ended, and records
the worker's heartbeat. On SIGTERM the loop stops receiving, lets running processes
finish for a grace period, then hands the rest back to their queue.

The poller runs the loop and the lifecycle; its parts are the options
(stratoflow.workers.poller_options), the work pool and its queues
(stratoflow.workers.pool_queues), what it does with each message it receives
(stratoflow.workers.intake), the run processes (stratoflow.workers.processes) and the
batched deletion of their messages (stratoflow.workers.deletions).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError

from stratoflow._signals import stop_on_signals
from stratoflow.clock import Clock
from stratoflow.deployments.models import WorkPoolSpec, WorkQueueSpec
from stratoflow.platform import Platform
from stratoflow.workers import registry
from stratoflow.workers.deletions import Deletions
from stratoflow.workers.forkspawn import spawner_for
from stratoflow.workers.intake import Intake
from stratoflow.workers.poller_options import PollerOptions, WorkerConfigError
from stratoflow.workers.pool_queues import PoolQueues
from stratoflow.workers.processes import RunProcesses, Spawn
from stratoflow.workers.slots import Slots, work_pool_limit_name, work_queue_limit_name

__all__ = ["Poller", "PollerOptions", "WorkerConfigError"]

logger = logging.getLogger("stratoflow.workers")

MAX_MESSAGES = 10
"""SQS returns at most 10 messages per ReceiveMessage."""


class Poller:
    def __init__(
        self,
        platform: Platform,
        options: PollerOptions,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], None] | None = None,
        spawn: Spawn | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if options.limit < 1:
            raise WorkerConfigError(f"--limit must be at least 1, got {options.limit}")
        self.platform = platform
        self.options = options
        self.clock = clock or platform.services.clock
        self.sleep = sleep or self.clock.sleep
        self.spawn = spawn or spawner_for(platform.settings.worker_start_method)
        self.env = dict(os.environ if env is None else env)
        self.name = options.name or registry.default_worker_name()
        self.backend = platform.services.backend
        self.sqs = platform.queues.client
        self.slots = Slots(
            platform.services.concurrency,
            self.clock,
            lease_seconds=platform.settings.concurrency_lease_seconds,
            cache_for=options.pool_refresh_every,
        )
        self.deletions = Deletions(self.sqs, self.clock, within=options.delete_within)
        self.processes = RunProcesses(
            platform,
            clock=self.clock,
            sleep=self.sleep,
            worker=self.name,
            visibility_timeout=options.visibility_timeout,
            extend_every=options.extend_every,
            state_check_every=options.state_check_every,
            kill_grace=options.kill_grace,
            deletions=self.deletions,
        )
        self.last_poll_received: int | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._hurry = threading.Event()
        self._freed = threading.Event()
        """Set when a run ends or leaves its timer: a full worker may receive again."""
        self._finishing = False
        self._closed = threading.Event()
        self._started_at = self.clock.now()
        self.pool_queues = PoolQueues(
            platform, options, clock=self.clock, next_refresh=self._started_at
        )
        self._next_heartbeat = self._started_at
        self.intake = Intake(
            platform,
            options,
            clock=self.clock,
            spawn=self.spawn,
            env=self.env,
            worker=self.name,
            pool_queues=self.pool_queues,
            slots=self.slots,
            processes=self.processes,
            stop=self._stop,
            freed=self._freed,
        )

    # Lifecycle

    def start(self) -> None:
        """Check the pool and queues (WorkerConfigError, UnknownWorkPool, UnknownWorkQueue)
        and record the first heartbeat."""
        self.pool_queues.refresh(strict=True)
        self._heartbeat(self.clock.now())
        prime = getattr(self.spawn, "prime", None)
        if prime is not None:
            prime(self.env)  # the fork server or warm processes importing before a run comes
        logger.info(
            "Worker %r polling work pool %r, queues %s (up to %d runs at once)",
            self.name,
            self.options.pool,
            ", ".join(self.queue_names),
            self.options.limit,
        )

    def run(
        self, max_iterations: int | None = None, until: Callable[[], bool] | None = None
    ) -> None:
        """Poll until stopped (`request_stop`), `until()` is true or after `max_iterations`
        receive passes. Stopped: running flow runs get the shutdown grace, then go back to
        their queue. Otherwise (`until`, `max_iterations`): they are waited for."""
        self.start()
        supervisor = None
        if self.options.background:
            supervisor = threading.Thread(
                target=self._supervise_loop, name="stratoflow-worker-supervisor", daemon=True
            )
            supervisor.start()
        iterations = 0
        try:
            while not self._stop.is_set():
                if until is not None and until():
                    break
                if max_iterations is not None and iterations >= max_iterations:
                    break
                iterations += 1
                try:
                    self.step()
                except (BotoCoreError, ClientError) as exc:
                    logger.warning("Polling failed (%s); trying again shortly", exc)
                    self.sleep(self.options.idle_sleep * 5)
        finally:
            if self._hurry.is_set():
                grace: float | None = 0.0
            elif self._stop.is_set():
                grace = self.options.shutdown_grace
            else:
                grace = None
            self.shutdown(grace)
            self._closed.set()
            if supervisor is not None:
                supervisor.join(timeout=self.options.supervise_every + 30)

    def request_stop(self) -> None:
        """Stop receiving (SIGTERM, SIGINT); a second request stops running runs at once."""
        if self._stop.is_set():
            self._hurry.set()
        self._stop.set()

    def signal_handlers(self) -> contextlib.AbstractContextManager[None]:
        """SIGTERM and SIGINT ask the worker to stop (the previous handlers come back)."""
        return stop_on_signals(self.request_stop)

    @property
    def running(self) -> int:
        """Runs this worker has: running processes and runs held until their start."""
        return len(self.processes) + self.intake.held

    @property
    def received(self) -> int:
        """Messages received."""
        return self.intake.received

    @property
    def pool(self) -> WorkPoolSpec | None:
        """The work pool as last read (None: not read yet)."""
        return self.pool_queues.pool

    @property
    def queue_names(self) -> list[str]:
        return self.pool_queues.names

    def idle(self) -> bool:
        """Nothing was received by the last receive pass and nothing runs (`--once`)."""
        return self.last_poll_received == 0 and self.running == 0

    # The receive loop

    def step(self) -> int:
        """One pass: supervise (unless a thread does), then receive and start runs."""
        if not self.options.background:
            self.supervise()
        now = self.clock.now()
        if now >= self.pool_queues.next_refresh:
            self.pool_queues.refresh(strict=False)
        if self._stop.is_set():
            return 0
        self._freed.clear()
        if self.capacity() <= 0:
            if self.options.background:  # the supervisor thread says when a run ended
                self._freed.wait(self.options.idle_sleep)
            else:
                self.sleep(self.options.idle_sleep)
            return 0
        received = self.poll_once()
        if received == 0 and self.options.wait_seconds == 0:
            self.sleep(self.options.idle_sleep)
        return received

    def capacity(self) -> int:
        """Runs this worker may start now: its own limit, and its work pool's."""
        free = self.options.limit - self.running
        pool_free = self.slots.free(work_pool_limit_name(self.options.pool))
        return free if pool_free is None else min(free, pool_free)

    def poll_once(self) -> int:
        """Receive from the queues in priority order; after a queue that had messages, the
        next pass starts again from the highest priority. A quick pass without waiting
        comes first, then a long poll spread over the queues."""
        queues = self.pool_queues.selected()
        if not queues:
            self.last_poll_received = 0
            self.sleep(self.options.idle_sleep)
            return 0
        waits = [0]
        if self.options.wait_seconds > 0:
            waits.append(max(1, self.options.wait_seconds // len(queues)))
        for wait in waits:
            for queue in queues:
                count = self._receive_count(queue)
                if count <= 0:
                    continue
                messages = self.pool_queues.receive(queue, count, wait)
                if messages:
                    self.last_poll_received = len(messages)
                    self.intake.handle(queue, messages)
                    return len(messages)
                if self._stop.is_set():
                    break
        self.last_poll_received = 0
        return 0

    def _receive_count(self, queue: WorkQueueSpec) -> int:
        count = min(self.capacity(), MAX_MESSAGES)
        queue_free = self.slots.free(work_queue_limit_name(self.options.pool, queue.name))
        return count if queue_free is None else min(count, queue_free)

    # Supervising the processes

    def _supervise_loop(self) -> None:
        while not self._closed.wait(self.options.supervise_every):
            try:
                self.supervise()
            except Exception:
                logger.warning("Supervising flow run processes failed", exc_info=True)

    def supervise(self) -> None:
        """Watch the running processes; record the worker's heartbeat when due."""
        before = len(self.processes)
        self.processes.supervise()
        if len(self.processes) < before:
            self._freed.set()
        # Ended runs' messages wait for others to end meanwhile, not when none is left.
        self.deletions.flush(everything=self.running == 0)
        with self._lock:
            now = self.clock.now()
            if now >= self._next_heartbeat:
                self._heartbeat(now)

    # Shutdown

    def shutdown(self, grace: float | None) -> None:
        """Wait for running processes (at most `grace` seconds; None: as long as they
        run), then hand the rest back to their queue; remove the worker's heartbeat."""
        deadline = None if grace is None else self.clock.now() + timedelta(seconds=grace)
        if self.running:
            logger.info(
                "Waiting for %d running flow run(s)%s",
                self.running,
                "" if grace is None else f" for up to {grace:g} s",
            )
        while self.running and (deadline is None or self.clock.now() < deadline):
            if self._hurry.is_set():  # a second Ctrl-C: hand them back now
                break
            if deadline is None and self._stop.is_set():  # SIGTERM while draining (--once)
                deadline = self.clock.now() + timedelta(seconds=self.options.shutdown_grace)
            if not self.options.background or self._closed.is_set():
                self.supervise()
            if self.running:
                self.sleep(min(self.options.supervise_every, 1.0))
        self.processes.hand_back_all()
        self.deletions.flush(everything=True)
        close_spare = getattr(self.spawn, "close", None)
        if close_spare is not None:
            close_spare()  # the fork server, or the warm processes waiting for a run
        with self._lock:
            self._finishing = True  # no heartbeat may recreate the item removed below
        try:
            registry.remove_worker(self.platform, pool=self.options.pool, name=self.name)
        except (BotoCoreError, ClientError):
            logger.warning("Could not remove the worker's heartbeat item", exc_info=True)

    # The worker's heartbeat

    def _heartbeat(self, now: datetime) -> None:
        if self._finishing:
            return
        self._next_heartbeat = now + timedelta(seconds=self.options.heartbeat_every)
        try:
            registry.record_heartbeat(
                self.platform,
                pool=self.options.pool,
                name=self.name,
                queues=self.queue_names,
                running=self.running,
                limit=self.options.limit,
                now=now,
                started=self._started_at,
            )
        except (BotoCoreError, ClientError):
            logger.warning("Could not record the worker's heartbeat", exc_info=True)
