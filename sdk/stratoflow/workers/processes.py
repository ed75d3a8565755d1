"""The flow run processes of an on-prem poller: started per claimed run, watched while
they run, and accounted for when they end.

While a process runs, its message's visibility is extended (so SQS does not hand it to
another worker) and its run's state is read: a run set to Cancelling has its process
terminated (killed after a grace) and ends Cancelled. A process that died before its run
ended crashes the run. Then the message is deleted and the concurrency slots given back.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import ClientError

from stratoflow.clock import Clock
from stratoflow.concurrency._acquire import LeaseHolding
from stratoflow.crashes import mark_crashed
from stratoflow.exceptions import ConflictError, InvalidTransitionError
from stratoflow.platform import Platform
from stratoflow.states import Cancelled, Scheduled, State, StateType

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from stratoflow.backends.base import Backend
    from stratoflow.workers.deletions import Deletions

logger = logging.getLogger("stratoflow.workers")

NOT_RUNNABLE_EXIT = 3
"""`strato flow-run execute` exits 3 when the run was not its to run."""
REPORTED_EXITS = frozenset({0, 1, NOT_RUNNABLE_EXIT})
"""Exits where the process itself reported the outcome (ended, handed back, not its run)."""


class ChildProcess(Protocol):
    """What the poller needs of a flow run's process (a subprocess.Popen)."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


Spawn = Callable[[list[str], Mapping[str, str]], ChildProcess]


def popen_spawn(command: list[str], env: Mapping[str, str]) -> ChildProcess:
    # A session of its own: a Ctrl-C in the worker's terminal reaches the worker only,
    # which decides what happens to its runs. No handoff: every local user can read a
    # process's command line, and a run's parameters are not theirs.
    return subprocess.Popen(without_handoff(command), env=dict(env), start_new_session=True)


HANDOFF_OPTION = "--handoff"
"""What the poller hands a run's process (stratoflow.workers.handoff)."""


def execute_command(flow_run_id: str, handoff: str | None = None) -> list[str]:
    """The flow run process's command line; the run id comes last."""
    given = [HANDOFF_OPTION, handoff] if handoff else []
    return [sys.executable, "-m", "stratoflow.cli", "flow-run", "execute", *given, flow_run_id]


def handoff_of(command: Sequence[str]) -> str | None:
    """The handoff in a flow run process's command line, if any."""
    for index, part in enumerate(command[:-1]):
        if part == HANDOFF_OPTION:
            return command[index + 1]
    return None


def without_handoff(command: Sequence[str]) -> list[str]:
    """The command line without its handoff (for a process whose command line any local
    user can read)."""
    kept: list[str] = []
    skip = False
    for part in command:
        if skip:
            skip = False
        elif part == HANDOFF_OPTION:
            skip = True
        else:
            kept.append(part)
    return kept


@dataclass(eq=False)
class RunProcess:
    run_id: str
    queue_url: str
    receipt: str
    process: ChildProcess
    holding: LeaseHolding
    next_extend: datetime
    next_check: datetime
    kill_at: datetime | None = None
    """Set when the worker terminated the process (cancellation)."""
    stopping: bool = False
    """Being handed back at shutdown: no longer supervised."""


class RunProcesses:
    """The running processes, by the receipt handle of their message (not by run: a
    retry's process may start while its previous attempt's process is still exiting)."""

    def __init__(
        self,
        platform: Platform,
        *,
        clock: Clock,
        sleep: Callable[[float], None],
        worker: str,
        visibility_timeout: int,
        extend_every: float,
        state_check_every: float,
        kill_grace: float,
        deletions: Deletions | None = None,
    ) -> None:
        self.platform = platform
        self.backend = platform.services.backend
        self.sqs = platform.queues.client
        self.clock = clock
        self.sleep = sleep
        self.worker = worker
        self.visibility_timeout = visibility_timeout
        self.extend_every = timedelta(seconds=extend_every)
        self.state_check_every = timedelta(seconds=state_check_every)
        self.kill_grace = kill_grace
        self.deletions = deletions
        """Where the messages of ended runs go to be deleted together (None: at once)."""
        self._running: dict[str, RunProcess] = {}
        self._lock = threading.RLock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._running)

    def add(
        self,
        run_id: str,
        queue_url: str,
        receipt: str,
        process: ChildProcess,
        holding: LeaseHolding,
    ) -> None:
        now = self.clock.now()
        with self._lock:
            self._running[receipt] = RunProcess(
                run_id=run_id,
                queue_url=queue_url,
                receipt=receipt,
                process=process,
                holding=holding,
                next_extend=now + self.extend_every,
                next_check=now + self.state_check_every,
            )

    def supervise(self) -> None:
        """Reap ended processes, extend message visibility, act on cancellation."""
        with self._lock:
            now = self.clock.now()
            for job in list(self._running.values()):
                if job.stopping:
                    continue
                code = job.process.poll()
                if code is not None:
                    self._ended(job, code)
                    continue
                if now >= job.next_extend:
                    set_visibility(self.sqs, job.queue_url, job.receipt, self.visibility_timeout)
                    job.next_extend = now + self.extend_every
                if job.kill_at is not None:
                    if now >= job.kill_at:
                        logger.warning("Killing the process of flow run %s", job.run_id)
                        job.process.kill()
                        job.kill_at = now + timedelta(days=365)
                    continue
                if now >= job.next_check:
                    job.next_check = now + self.state_check_every
                    self._check_cancelled(job, now)

    def hand_back_all(self) -> None:
        """Stop every process and put its run back in its queue for another worker."""
        with self._lock:
            remaining = list(self._running.values())
            for job in remaining:
                job.stopping = True
        for job in remaining:
            self._hand_back(job)

    def _check_cancelled(self, job: RunProcess, now: datetime) -> None:
        try:
            # Eventually consistent (half the read units of the read every few seconds a
            # run runs): a cancellation missed by a stale read is seen by the next check,
            # and a stale Cancelling can only be followed by a final state.
            state = self.backend.read_flow_run(job.run_id, consistent=False).state
        except Exception:
            logger.warning("Could not read flow run %s", job.run_id, exc_info=True)
            return
        if state is not None and state.type is StateType.CANCELLING:
            logger.info("Flow run %s is Cancelling: stopping its process", job.run_id)
            job.process.terminate()
            job.kill_at = now + timedelta(seconds=self.kill_grace)

    def _ended(self, job: RunProcess, code: int) -> None:
        with self._lock:
            self._running.pop(job.receipt, None)
        job.holding.release()
        # The process reported the outcome itself (and the run may already be a later
        # attempt's), unless the worker stopped it: then nothing is left to decide here,
        # and the run is not read.
        reported = code in REPORTED_EXITS and job.kill_at is None
        if reported:
            logger.info("Flow run %s process exited (%s)", job.run_id, code)
            self._delete(job)
            return
        try:
            state = self.backend.read_flow_run(job.run_id).state
        except Exception:
            logger.warning("Could not read flow run %s", job.run_id, exc_info=True)
            state = None
        if state is not None and state.type is StateType.CANCELLING:
            set_state(self.backend, job.run_id, Cancelled("The worker stopped its process."))
            logger.info("Flow run %s cancelled", job.run_id)
        elif (
            state is not None
            and not state.is_final()
            and state.type not in (StateType.SCHEDULED, StateType.PAUSED)
        ):
            reason = f"The flow run's process {exit_description(code)} before the run ended."
            mark_crashed(self.platform, job.run_id, reason)
            logger.error("Flow run %s crashed: %s", job.run_id, reason)
        else:
            name = state.name if state else "gone"
            logger.info("Flow run %s process exited (%s), run %s", job.run_id, code, name)
        self._delete(job)

    def _delete(self, job: RunProcess) -> None:
        if self.deletions is not None:
            self.deletions.add(job.queue_url, job.receipt)
        else:
            delete_message(self.sqs, job.queue_url, job.receipt)

    def _hand_back(self, job: RunProcess) -> None:
        logger.info("Handing flow run %s back to its queue", job.run_id)
        job.process.terminate()
        waited = 0.0
        while job.process.poll() is None and waited < self.kill_grace:
            self.sleep(0.1)
            waited += 0.1
        if job.process.poll() is None:
            job.process.kill()
        with self._lock:
            self._running.pop(job.receipt, None)
        job.holding.release()
        try:
            run = self.backend.read_flow_run(job.run_id)
            if run.state is not None and not run.state.is_final():
                self.backend.set_flow_run_state(
                    job.run_id,
                    Scheduled(
                        f"Worker {self.worker} stopped; the run goes back to its queue.",
                        scheduled_time=self.clock.now().isoformat(),
                    ),
                    force=True,
                )
        except Exception:
            logger.warning("Could not reschedule flow run %s", job.run_id, exc_info=True)
        set_visibility(self.sqs, job.queue_url, job.receipt, 0)


def set_state(backend: Backend, run_id: str, state: State) -> None:
    """Set a run's state; a run that moved on meanwhile is left as it is."""
    try:
        backend.set_flow_run_state(run_id, state)
    except (ConflictError, InvalidTransitionError) as exc:
        logger.info("Flow run %s: %s", run_id, exc)


def delete_message(sqs: SQSClient, url: str, receipt: str) -> None:
    try:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=receipt)
    except ClientError as exc:
        # A duplicate of the message was received and deleted elsewhere meanwhile.
        logger.debug("Could not delete a message: %s", exc)


def set_visibility(sqs: SQSClient, url: str, receipt: str, seconds: int) -> None:
    try:
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=seconds
        )
    except ClientError as exc:
        logger.debug("Could not change a message's visibility: %s", exc)


def exit_description(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"
