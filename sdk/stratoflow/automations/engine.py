"""The automations engine: events in, firings (and their actions) out.

`handle(events)` is called by the automations Lambda with the events of a DynamoDB
stream batch; `evaluate_proactive(now)` by the scheduler tick, for Proactive triggers
whose window ended without enough events. Both are safe to repeat and to run at once:
counting an event is a conditional write that ignores an event already counted, and a
firing is a conditional put keyed by (automation, bucket, window), so the same window
never fires twice.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from stratoflow.automations.actions import ActionContext, ActionExecutor, ActionRunner
from stratoflow.automations.buckets import (
    Bucket,
    Fire,
    FireState,
    advance_time,
    count_child,
    count_event,
    due_at,
)
from stratoflow.automations.matching import bucket_key, bucket_values, composite_key, covers
from stratoflow.automations.models import (
    Action,
    Automation,
    CompoundTrigger,
    EventTrigger,
    SequenceTrigger,
    Trigger,
    has_proactive,
    parent_path,
    trigger_paths,
)
from stratoflow.automations.store import (
    BUCKET_TTL,
    FIRING_TTL,
    AutomationRecord,
    AutomationStore,
    BaseAutomationStore,
    expiry,
)
from stratoflow.clock import Clock, SystemClock
from stratoflow.events.models import Event
from stratoflow.exceptions import ConflictError, StratoflowError

if TYPE_CHECKING:
    from stratoflow.platform import Platform

logger = logging.getLogger("stratoflow.automations")

CONFLICT_ATTEMPTS = 20
"""Writes of one bucket that may lose a race before the engine gives up (and the
stream delivers the batch again)."""
_AUTOMATION_ACTIONS = frozenset({"pause-automation", "resume-automation"})


@dataclass(frozen=True)
class ActionResult:
    label: str
    """Where the action is in the automation: `actions[0]`, `actions_on_resolve[1]`, ..."""
    type: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Firing:
    """A trigger fired (or resolved) for one window, and what its actions did."""

    automation_id: str
    automation_name: str
    trigger: str
    bucket: str
    window: str
    state: FireState
    fired_at: datetime
    event: Event | None
    results: tuple[ActionResult, ...]

    @property
    def errors(self) -> list[ActionResult]:
        return [r for r in self.results if not r.ok]


Step = Callable[[Bucket | None], Bucket | None]
_UNREAD = object()


class AutomationEngine:
    def __init__(
        self,
        platform: Platform | None,
        *,
        store: BaseAutomationStore | None = None,
        actions: ActionRunner | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.platform = platform
        self.clock = clock or (platform.services.clock if platform else SystemClock())
        if store is None:
            if platform is None:
                raise ValueError("AutomationEngine needs a platform or a store")
            backend = platform.backend
            store = AutomationStore(backend.clients.dynamodb, backend.table, clock=self.clock)
        self.store = store
        self.actions: ActionRunner = actions or ActionExecutor(platform, store)
        self._changed_automations = False
        self._in_batch = False
        self._listed: list[Automation] | None = None
        """The enabled automations as listed in this batch (`batch`)."""

    # Entry points

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Within: the enabled automations are listed once, by the first call that needs
        them, and again only after one of this engine's actions paused or resumed one.
        The stream handler hands each record of a batch to `handle` on its own (a record
        that fails is retried alone); listing per call was one Query per record. An
        automation created, changed or deleted meanwhile counts from the next batch."""
        self._in_batch, self._listed = True, None
        try:
            yield
        finally:
            self._in_batch, self._listed = False, None

    def handle(self, events: Iterable[Event], now: datetime | None = None) -> list[Firing]:
        """Count `events` into the buckets of every enabled automation; fire (and run the
        actions of) each trigger whose threshold is met. Events delivered again change
        nothing. Returns the firings this call claimed."""
        batch = sorted(events, key=lambda e: e.occurred)
        if not batch:
            return []
        now = now or self.clock.now()
        automations = self._enabled()
        firings: list[Firing] = []
        failures: list[tuple[str, Exception]] = []
        for event in batch:
            for automation in automations:
                try:
                    firings += self._on_event(automation, event, now)
                except Exception as exc:  # the others still count; raised below
                    logger.exception(
                        "Automation %r could not handle event %s", automation.name, event.id
                    )
                    failures.append((automation.name, exc))
            if self._changed_automations:  # an action paused or resumed an automation
                automations = self._enabled()
        _raise_for(failures, "handle the events")
        return firings

    def evaluate_proactive(self, now: datetime | None = None) -> list[Firing]:
        """Fire the Proactive triggers whose window ended with too few events (the
        scheduler tick). One query when there is no automation, plus one per automation
        with a Proactive trigger: it reads only the buckets that are due."""
        now = now or self.clock.now()
        firings: list[Firing] = []
        failures: list[tuple[str, Exception]] = []
        for automation in self._enabled():
            if not has_proactive(automation.trigger):
                continue
            try:
                firings += self._evaluate(automation, now)
            except Exception as exc:  # the others are still evaluated
                logger.exception("Automation %r could not be evaluated", automation.name)
                failures.append((automation.name, exc))
        _raise_for(failures, "evaluate their Proactive triggers")
        return firings

    def _evaluate(self, automation: Automation, now: datetime) -> list[Firing]:
        assert automation.id is not None
        firings: list[Firing] = []
        triggers = dict(trigger_paths(automation.trigger))
        due = self.store.due_buckets(automation.id, now)
        for bucket in due:
            owner = triggers.get(bucket.trigger)
            if owner is not None:
                firings += self._update(
                    automation,
                    bucket.key,
                    None,
                    _time_step(owner, now, bucket.trigger, bucket.key),
                    now,
                    owner=owner,
                    known=bucket,
                )
        seen = {bucket.key for bucket in due}
        for path, trigger in triggers.items():
            if not _watches_from_the_start(trigger):
                continue
            key = bucket_key(path, "")
            if key in seen or self.store.read_bucket(automation.id, key) is not None:
                continue
            firings += self._update(
                automation, key, None, _time_step(trigger, now, path, key), now, owner=trigger
            )
        return firings

    # Counting

    def _enabled(self) -> list[Automation]:
        if self._listed is not None and not self._changed_automations:
            return self._listed
        self._changed_automations = False
        records: Sequence[AutomationRecord] = self.store.list()
        enabled = [r.automation for r in records if r.enabled]
        if self._in_batch:
            self._listed = enabled
        return enabled

    def _on_event(self, automation: Automation, event: Event, now: datetime) -> list[Firing]:
        firings: list[Firing] = []
        for path, trigger in trigger_paths(automation.trigger):
            if not isinstance(trigger, EventTrigger) or not covers(trigger, event):
                continue
            values = bucket_values(trigger.for_each, event)
            key = bucket_key(path, values)
            firings += self._update(
                automation,
                key,
                event.id,
                _event_step(trigger, event, path, key, values),
                now,
                owner=trigger,
            )
        return firings

    def _update(
        self,
        automation: Automation,
        key: str,
        seen_id: str | None,
        step: Step,
        now: datetime,
        *,
        owner: Trigger,
        known: Bucket | object | None = _UNREAD,
    ) -> list[Firing]:
        """Apply `step` to the bucket with optimistic concurrency, then settle the
        firings it decided. `seen_id` (an event or child firing) is counted once."""
        assert automation.id is not None
        for attempt in range(CONFLICT_ATTEMPTS):
            current = (
                known
                if attempt == 0 and known is not _UNREAD
                else self.store.read_bucket(automation.id, key)
            )
            assert current is None or isinstance(current, Bucket)
            if current is not None and seen_id is not None and seen_id in current.event_ids:
                return self._settle(automation, current, now, owner)  # delivered again
            updated = step(current)
            if updated is None:
                return self._settle(automation, current, now, owner) if current else []
            if self._write(automation.id, updated, seen_id, now, owner):
                updated.version += 1
                return self._settle(automation, updated, now, owner)
        raise ConflictError(
            f"Automation {automation.name!r}: bucket {key!r} kept changing under "
            f"{CONFLICT_ATTEMPTS} attempts to update it."
        )

    def _write(
        self, automation_id: str, bucket: Bucket, seen_id: str | None, now: datetime, owner: Trigger
    ) -> bool:
        proactive = isinstance(owner, EventTrigger) and owner.posture == "Proactive"
        return self.store.write_bucket(
            automation_id,
            bucket,
            seen_id=seen_id,
            due=due_at(bucket, proactive_within=owner.within if proactive else None),
            expires_at=expiry(now, BUCKET_TTL, owner.within),
        )

    def _settle(
        self, automation: Automation, bucket: Bucket, now: datetime, owner: Trigger
    ) -> list[Firing]:
        """Claim (or pass to the parent trigger) each pending firing, then remove them."""
        if not bucket.pending:
            return []
        firings: list[Firing] = []
        for fire in bucket.pending:
            firings += self._dispatch(automation, fire, now)
        self._forget(automation, bucket.key, {f.id for f in bucket.pending}, now, owner)
        return firings

    def _forget(
        self, automation: Automation, key: str, done: set[str], now: datetime, owner: Trigger
    ) -> None:
        assert automation.id is not None
        for _ in range(CONFLICT_ATTEMPTS):
            bucket = self.store.read_bucket(automation.id, key)
            if bucket is None or not any(f.id in done for f in bucket.pending):
                return
            bucket.pending = [f for f in bucket.pending if f.id not in done]
            if self._write(automation.id, bucket, None, now, owner):
                return
        logger.warning("Automation %r: could not clear settled firings of %r", automation.name, key)

    def _dispatch(self, automation: Automation, fire: Fire, now: datetime) -> list[Firing]:
        assert automation.id is not None
        parent = parent_path(fire.trigger)
        if parent is None:
            within = _within(automation.trigger)
            if not self.store.claim_firing(
                automation.id, fire, expires_at=expiry(fire.at, FIRING_TTL, within)
            ):
                return []  # fired already (another handler, or a delivery before)
            return [self._act(automation, fire, now)]
        if fire.state != "triggered":
            return []  # only a root Proactive trigger resolves
        path, index = parent
        composite = dict(trigger_paths(automation.trigger))[path]
        assert isinstance(composite, CompoundTrigger | SequenceTrigger)
        key = composite_key(path)

        def step(bucket: Bucket | None) -> Bucket:
            return count_child(composite, bucket, index, fire, trigger_path=path, key=key)

        return self._update(automation, key, fire.id, step, now, owner=composite)

    # Acting

    def _act(self, automation: Automation, fire: Fire, now: datetime) -> Firing:
        assert automation.id is not None
        event = Event.model_validate(fire.event) if fire.event else None
        context = ActionContext(automation=automation, fire=fire, event=event, now=now)
        results: list[ActionResult] = []
        last_error: str | None = None
        for label, action in _actions_for(automation, fire.state):
            try:
                detail = self.actions.run(action, context, label)
            except Exception as exc:  # noqa: BLE001 - one failing action must not stop the others
                message = str(exc) or type(exc).__name__
                logger.error(
                    "Automation %r (%s): %s (%s) failed: %s",
                    automation.name,
                    automation.id,
                    label,
                    action.type,
                    message,
                )
                results.append(ActionResult(label, action.type, False, message))
                last_error = f"{label} ({action.type}): {message}"
                continue
            results.append(ActionResult(label, action.type, True, detail))
            if action.type in _AUTOMATION_ACTIONS:
                self._changed_automations = True
        logger.info(
            "Automation %r %s (window %s of bucket %r): %s",
            automation.name,
            fire.state,
            fire.window,
            fire.bucket,
            "; ".join(f"{r.label}: {r.detail}" for r in results) or "no actions",
        )
        try:
            self.store.record_outcome(automation.id, fired_at=fire.at, error=last_error)
        except Exception:
            logger.exception("Automation %r: could not record its firing", automation.name)
        return Firing(
            automation_id=automation.id,
            automation_name=automation.name,
            trigger=fire.trigger,
            bucket=fire.bucket,
            window=fire.window,
            state=fire.state,
            fired_at=fire.at,
            event=event,
            results=tuple(results),
        )


class AutomationsFailed(StratoflowError):
    """Some automations failed on an event batch or a tick (the others were done); the
    stream delivers the batch again, and counting is idempotent."""


def _raise_for(failures: list[tuple[str, Exception]], what: str) -> None:
    if not failures:
        return
    names = ", ".join(dict.fromkeys(repr(name) for name, _ in failures))
    first = failures[0][1]
    raise AutomationsFailed(
        f"Automation(s) {names} could not {what}: {type(first).__name__}: {first}"
    ) from first


def _actions_for(automation: Automation, state: FireState) -> list[tuple[str, Action]]:
    if state == "resolved":
        return [
            (f"actions_on_resolve[{i}]", a) for i, a in enumerate(automation.actions_on_resolve)
        ]
    return [(f"actions[{i}]", a) for i, a in enumerate(automation.actions)] + [
        (f"actions_on_trigger[{i}]", a) for i, a in enumerate(automation.actions_on_trigger)
    ]


def _within(trigger: Trigger) -> float:
    return max(getattr(t, "within", 0.0) for _, t in trigger_paths(trigger))


def _event_step(trigger: EventTrigger, event: Event, path: str, key: str, values: str) -> Step:
    def step(bucket: Bucket | None) -> Bucket:
        return count_event(trigger, bucket, event, trigger_path=path, key=key, values=values)

    return step


def _time_step(trigger: Trigger, now: datetime, path: str, key: str) -> Step:
    """What time does to a bucket: moves Proactive windows on; nothing for the others
    (their pending firings are settled all the same)."""

    def step(bucket: Bucket | None) -> Bucket | None:
        if not isinstance(trigger, EventTrigger):
            return None
        return advance_time(trigger, bucket, now, trigger_path=path, key=key)

    return step


def _watches_from_the_start(trigger: Trigger) -> bool:
    """A Proactive trigger without `after` or `for_each`: its one bucket is created by
    the first tick (the window starts then), not by an event."""
    return (
        isinstance(trigger, EventTrigger)
        and trigger.posture == "Proactive"
        and not trigger.after
        and not trigger.for_each
    )


def evaluate_on_tick(platform: Platform, now: datetime, errors: list[str]) -> int:
    """The scheduler tick's call: evaluate Proactive triggers; a failure (or a failed
    action) becomes a line in `errors`, never an exception. Returns the firings."""
    try:
        firings = AutomationEngine(platform).evaluate_proactive(now)
    except Exception as exc:
        logger.exception("Proactive automations could not be evaluated")
        errors.append(f"automations: {type(exc).__name__}: {exc}")
        return 0
    errors.extend(
        f"automation {f.automation_name!r}: {r.label} ({r.type}) failed: {r.detail}"
        for f in firings
        for r in f.errors
    )
    return len(firings)
