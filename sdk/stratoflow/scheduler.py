"""The scheduler tick (DESIGN §1): due slots become Scheduled runs, sent to their queue.

A tick is idempotent: each slot's run id derives from (deployment, schedule key, slot
time), so two ticks at once, a retried tick or a redeploy make each run exactly once.
Every created run is sent with an SQS delay equal to the time left before its start, so
runs start on time to the second, not to the minute.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from botocore.exceptions import ClientError

from stratoflow.deployments.models import Deployment
from stratoflow.deployments.runs import enqueue, schedule_flow_run
from stratoflow.deployments.schedule_marks import Mark, fingerprint, is_bad_start
from stratoflow.exceptions import ConflictError, InvalidTransitionError
from stratoflow.models import FlowRun
from stratoflow.platform import Platform
from stratoflow.schedules import slots
from stratoflow.states import Late, StateType
from stratoflow.sweeps import SweepReport, sweep
from stratoflow.workers.queues import MAX_DELAY_SECONDS
from stratoflow.workers.triage import due_time

LOOKAHEAD = timedelta(seconds=MAX_DELAY_SECONDS)
"""Runs are created at most this far ahead: as far as an SQS delay reaches."""
CATCH_UP = timedelta(minutes=2)
"""Slots this recent are still created (a tick that came late)."""
LATE_AFTER = timedelta(seconds=15)
"""A run still unclaimed this long after its start is marked Late."""
REQUEUED = frozenset({"AwaitingRetry", "Rescheduled", "Sleeping", "Resuming", "HandedBack"})
"""States that put a run back in its queue: whoever writes one sends a new message."""
SAFETY_MARGIN_SECONDS = 10.0
"""Stop paging through deployments when less time than this is left (Lambda)."""


@dataclass
class TickReport:
    deployments: int = 0
    schedules: int = 0
    created: int = 0
    existing: int = 0
    enqueued: int = 0
    late: int = 0
    pages: int = 0
    complete: bool = True
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    swept: SweepReport = field(default_factory=SweepReport)


class Scheduler:
    def __init__(self, platform: Platform, *, page_size: int = 100) -> None:
        self.platform = platform
        self.page_size = page_size

    def tick(
        self, now: datetime | None = None, *, time_left: Callable[[], float] | None = None
    ) -> TickReport:
        started = time.perf_counter()
        now = now or self.platform.services.clock.now()
        report = TickReport()
        self._schedule_deployments(now, report, time_left)
        # One read of the runs that are not final serves every pass below.
        with self.platform.services.backend.active_runs_snapshot():
            self._enqueue_orphans(now, report)
            self._mark_late(now, report)
            report.swept = sweep(self.platform, now)
        report.errors.extend(report.swept.task_runs.errors)
        # Proactive automations. Imported here, not at the top: the automations engine
        # (its models, templates, actions) is most of what the scheduler Lambda would
        # load at its cold start otherwise (bench/cold_start.py).
        from stratoflow.automations.engine import evaluate_on_tick

        evaluate_on_tick(self.platform, now, report.errors)
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def _schedule_deployments(
        self, now: datetime, report: TickReport, time_left: Callable[[], float] | None
    ) -> None:
        """Every deployment, a page at a time, from where a tick that ran out of time
        stopped (the pages before it were done by that tick; their slots are made 15
        minutes ahead, so waiting one tick loses none)."""
        marks = self.platform.schedule_marks
        start = marks.cursor()
        try:
            for page, following in self.platform.deployments.pages_from(start, self.page_size):
                report.pages += 1
                active = [d for d in page if not d.paused]
                report.deployments += len(page)
                known = marks.read(d.name for d in active) if active else {}
                for deployment in active:
                    self._schedule(deployment, now, report, known.get(deployment.name, {}))
                if following is None:
                    break
                if time_left is not None and time_left() < SAFETY_MARGIN_SECONDS:
                    report.complete = False
                    marks.set_cursor(following)
                    return
        except ClientError as exc:
            if start is None or not is_bad_start(exc):
                raise
            report.errors.append("The saved cursor was refused; the next tick starts at page 1")
        if start is not None:
            marks.set_cursor(None)

    def _schedule(
        self, deployment: Deployment, now: datetime, report: TickReport, known: dict[str, Mark]
    ) -> None:
        current = fingerprint(deployment)
        moved: dict[str, Mark] = {}
        for schedule in deployment.schedules:
            if not schedule.active:
                continue
            report.schedules += 1
            mark = known.get(schedule.key)
            done = mark.up_to if mark is not None and mark.fingerprint == current else None
            for slot in slots(schedule.schedule, now - CATCH_UP, now + LOOKAHEAD):
                if done is not None and slot <= done:
                    report.existing += 1  # made by an earlier tick: nothing to read or write
                    continue
                try:
                    run, created = schedule_flow_run(
                        self.platform,
                        deployment,
                        scheduled_time=slot,
                        parameters=schedule.parameters,
                        idempotency_key=f"{schedule.key}|{slot.isoformat()}",
                        auto_scheduled=True,
                        sending=True,
                    )
                except Exception as exc:  # noqa: BLE001 - one bad deployment must not stop the tick
                    report.errors.append(f"{deployment.name}: {type(exc).__name__}: {exc}")
                    break
                moved[schedule.key] = Mark(slot, current)  # its run exists from here on
                if not created:
                    report.existing += 1
                    continue
                report.created += 1
                try:
                    # Delay from the time of sending; created with `enqueued_at`.
                    enqueue(self.platform, run, recorded=True)
                except Exception:  # noqa: BLE001 - the orphan sweep below retries and reports it
                    break
                report.enqueued += 1
        if moved:
            # Only after the runs exist: a tick that dies before this looks again.
            self.platform.schedule_marks.write(deployment.name, {**known, **moved})

    def _enqueue_orphans(self, now: datetime, report: TickReport) -> None:
        """A run created but never sent (the creator died in between) is sent now: one
        without `enqueued_at`, or one created with it that a tick before this one found
        Late (`_unsent`: a run made past its start, Late at once, is not sent twice in
        the tick that made it; one still Late a tick later is, harmlessly); so
        is a run put back in its queue (a retry, a reschedule) but not sent since, and
        still unclaimed LATE_AFTER after it was due (the one that put it back died
        first)."""
        backend = self.platform.services.backend
        for run in backend.list_flow_runs_by_state(StateType.SCHEDULED, until=now + LOOKAHEAD):
            if run.deployment_name is not None and _unsent(run, now):
                try:
                    enqueue(self.platform, run)  # delay from the time of sending
                except Exception as exc:  # noqa: BLE001 - one bad queue must not stop the tick
                    report.errors.append(
                        f"{run.deployment_name}: flow run {run.id} not sent: "
                        f"{type(exc).__name__}: {exc}"
                    )
                    continue
                report.enqueued += 1

    def _mark_late(self, now: datetime, report: TickReport) -> None:
        backend = self.platform.services.backend
        for run in backend.list_flow_runs_by_state(StateType.SCHEDULED, until=now - LATE_AFTER):
            if run.state is None or run.state.name != "Scheduled":
                continue
            late = dataclasses.replace(
                Late(
                    "Not picked up by a worker within 15 s of its start; is a worker polling "
                    f"work queue {run.work_pool_name}/{run.work_queue_name}?",
                    **{k: v for k, v in run.state.details.items() if k == "scheduled_time"},
                ),
                # The tick's time, the clock `enqueued_at` is read with (`_unsent`).
                timestamp=now,
            )
            try:
                backend.set_flow_run_state(run.id, late, expected_version=run.version)
            except (ConflictError, InvalidTransitionError):
                continue  # claimed meanwhile: not late after all
            report.late += 1


def _unsent(run: FlowRun, now: datetime) -> bool:
    if run.enqueued_at is None:
        return True
    state = run.state
    if state is not None and state.name == "Late" and state.timestamp > run.enqueued_at:
        # Created with `enqueued_at` by a creator that meant to send it right after
        # (`schedule_flow_run(sending=True)`) and may have died first: sent once more
        # (a duplicate is harmless: the claim is conditional), which records the send.
        return True
    if state is None or state.name not in REQUEUED or state.timestamp <= run.enqueued_at:
        return False
    due = due_time(run)
    return due is not None and due <= now - LATE_AFTER
