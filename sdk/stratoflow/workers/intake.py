"""What an on-prem poller (stratoflow.workers.poller) does with each message it receives:
triage it (stratoflow.workers.triage), hold a run that arrived early until its exact
start time (on a timer), take the run's concurrency slots (stratoflow.workers.slots),
claim it, and start its process, handing it the claimed run and its deployment
(stratoflow.workers.handoff). The processes are then watched by RunProcesses
(stratoflow.workers.processes).

A message that could not be handled is left invisible: SQS delivers it again after its
visibility timeout.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from stratoflow.clock import Clock
from stratoflow.concurrency._acquire import LeaseHolding
from stratoflow.crashes import mark_crashed
from stratoflow.deployments.deploy import deployment_limit_name
from stratoflow.deployments.models import Deployment, WorkQueueSpec
from stratoflow.deployments.store import UnknownDeployment
from stratoflow.models import FlowRun
from stratoflow.orchestration.claims import claim_flow_run
from stratoflow.platform import Platform
from stratoflow.states import Cancelled
from stratoflow.workers.handoff import encode_handoff
from stratoflow.workers.messages import FlowRunMessage
from stratoflow.workers.poller_options import PollerOptions
from stratoflow.workers.pool_queues import PoolQueues
from stratoflow.workers.processes import (
    RunProcesses,
    Spawn,
    delete_message,
    execute_command,
    set_state,
    set_visibility,
)
from stratoflow.workers.slots import Slots, work_pool_limit_name, work_queue_limit_name
from stratoflow.workers.triage import Drop, SendOn, admit, seconds_until_due, send_on

logger = logging.getLogger("stratoflow.workers")


class Intake:
    """The messages a poller received, each to be dropped, sent on, held or started; the
    runs it holds count as running (`Poller.running`)."""

    def __init__(
        self,
        platform: Platform,
        options: PollerOptions,
        *,
        clock: Clock,
        spawn: Spawn,
        env: Mapping[str, str],
        worker: str,
        pool_queues: PoolQueues,
        slots: Slots,
        processes: RunProcesses,
        stop: threading.Event,
        freed: threading.Event,
    ) -> None:
        self.platform = platform
        self.options = options
        self.clock = clock
        self.spawn = spawn
        self.env = env
        self.name = worker
        self.backend = platform.services.backend
        self.sqs = platform.queues.client
        self.pool_queues = pool_queues
        self.slots = slots
        self.processes = processes
        self._stop = stop
        """Set when the poller stops: a message received or held is given back."""
        self._freed = freed
        """Set when a run leaves its timer: a full worker may receive again."""
        self._lock = threading.RLock()
        self.received = 0
        """Messages received."""
        self.held = 0
        """Runs received early and waiting (on a timer) for their start."""
        self.receives = 0
        """ReceiveMessage calls that returned messages: a message is known by its call's."""
        self._deployments: dict[str, tuple[Deployment | None, int]] = {}
        """Each deployment as last read, with the receives that had returned before the
        read started (`_deployment`)."""

    def handle(self, queue: WorkQueueSpec, messages: list[dict[str, Any]]) -> None:
        """The messages one ReceiveMessage call returned from `queue`."""
        self.receives += 1
        for message in messages:
            self._handle_safely(queue, message, self.receives)

    def _handle_safely(self, queue: WorkQueueSpec, received: dict[str, Any], batch: int) -> None:
        try:
            self._handle(queue, received, batch)
        except Exception:
            # Left invisible until its visibility times out, then redelivered; after
            # MAX_RECEIVE_COUNT deliveries SQS moves it to the dead-letter queue.
            logger.exception(
                "Could not handle message %s of work queue %s/%s; it will be redelivered",
                received.get("MessageId"),
                self.options.pool,
                queue.name,
            )

    def _handle(self, queue: WorkQueueSpec, received: dict[str, Any], batch: int) -> None:
        """`batch`: the number of the receive that returned `received`."""
        url = self.pool_queues.url(queue.name)
        receipt = str(received["ReceiptHandle"])
        body = str(received.get("Body") or "")
        self.received += 1
        if self._stop.is_set():
            self._set_visibility(url, receipt, 0)  # not ours any more: give it back now
            return
        decision = admit(
            self.platform, body, queue_name=self.pool_queues.name(queue.name), now=self.clock.now()
        )
        if isinstance(decision, Drop):  # a Refuse (another queue's run...) is dead-lettered
            self._delete(url, receipt)
            return
        message = decision.message
        if isinstance(decision, SendOn):
            logger.info(
                "Flow run %s starts in %.0f s: sending its message on",
                message.flow_run_id,
                decision.delay_seconds,
            )
            send_on(self.platform, decision.run, message, decision.delay_seconds)
            self._delete(url, receipt)
            return
        wait = seconds_until_due(decision.run, self.clock.now())
        if wait <= 0.05:
            self._start(queue, url, receipt, message, decision.run, batch)
            return
        # Arrived early (on purpose: PREFETCH_LEAD_SECONDS): start it at its exact time.
        with self._lock:
            self.held += 1
        timer = threading.Timer(
            wait, self._start_held, args=(queue, url, receipt, message, decision.run, batch)
        )
        timer.daemon = True
        timer.start()

    def _start_held(
        self,
        queue: WorkQueueSpec,
        url: str,
        receipt: str,
        message: FlowRunMessage,
        run: FlowRun,
        batch: int,
    ) -> None:
        try:
            if self._stop.is_set():
                self._set_visibility(url, receipt, 0)  # stopping: another worker takes it
            else:
                self._start(queue, url, receipt, message, run, batch)
        except Exception:
            logger.exception("Could not start flow run %s; it will be redelivered", run.id)
        finally:
            with self._lock:
                self.held -= 1
            self._freed.set()

    def _start(
        self,
        queue: WorkQueueSpec,
        url: str,
        receipt: str,
        message: FlowRunMessage,
        run: FlowRun,
        batch: int,
    ) -> None:
        """Claim `run` (the triage's read of it) and start its process, handing it the
        claimed run and its deployment (stratoflow.workers.handoff)."""
        run_id = run.id
        # Read before anything is taken or claimed: a failed read leaves the message to
        # be delivered again, with nothing to undo.
        deployment = self._deployment(run.deployment_name, batch)
        taken = self.slots.take(
            [
                work_pool_limit_name(self.options.pool),
                work_queue_limit_name(self.options.pool, queue.name),
            ],
            deployment_limit_name(run.deployment_name) if run.deployment_name else None,
        )
        if (
            taken == "deployment"
            and deployment is not None
            and deployment.collision_strategy == "cancel-new"
        ):
            self._cancel_new(run_id, deployment, url, receipt)
            return
        if not isinstance(taken, LeaseHolding):
            logger.info(
                "Flow run %s waits for a concurrency slot (%s limit full); offering it again "
                "in %d s",
                run_id,
                taken,
                self.options.defer_seconds,
            )
            send_on(self.platform, run, message, self.options.defer_seconds)
            self._delete(url, receipt)
            return
        claimed = claim_flow_run(
            self.backend, run_id, worker=self.name, now=self.clock.now(), read=run
        )
        if claimed is None:
            taken.release()
            logger.info("Dropping the message of flow run %s: another worker claimed it", run_id)
            self._delete(url, receipt)
            return
        try:
            handoff = encode_handoff(claimed, deployment)
            process = self.spawn(execute_command(run_id, handoff), self.env)
        except OSError as exc:
            taken.release()
            mark_crashed(self.platform, run_id, f"The worker could not start a process: {exc}")
            self._delete(url, receipt)
            return
        self.processes.add(run_id, url, receipt, process, taken)
        logger.info("Started flow run %s (process %s)", run_id, process.pid)

    def _cancel_new(self, run_id: str, deployment: Deployment, url: str, receipt: str) -> None:
        reason = (
            f"Deployment {deployment.name!r} is at its concurrency limit (concurrency limit "
            f"{deployment_limit_name(deployment.name)!r}) and its collision strategy is "
            "cancel-new."
        )
        set_state(self.backend, run_id, Cancelled(reason))
        logger.info("Cancelled flow run %s: %s", run_id, reason)
        self._delete(url, receipt)

    def _deployment(self, name: str | None, batch: int) -> Deployment | None:
        """The deployment `name` (None: there is none), as read after the receive numbered
        `batch` returned, so after its messages' runs were created: what the run's own
        process would read, never older. Messages of one receive share one read."""
        if name is None:
            return None
        cached = self._deployments.get(name)
        if cached is not None and cached[1] >= batch:
            return cached[0]
        returned = self.receives  # before the read starts
        try:
            deployment: Deployment | None = self.platform.deployments.get(name)
        except UnknownDeployment:
            deployment = None
        with self._lock:
            self._deployments[name] = (deployment, returned)
        return deployment

    def _delete(self, url: str, receipt: str) -> None:
        delete_message(self.sqs, url, receipt)

    def _set_visibility(self, url: str, receipt: str, seconds: int) -> None:
        set_visibility(self.sqs, url, receipt, seconds)
