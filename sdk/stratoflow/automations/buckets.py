"""The state of one bucket and how events and time change it (pure functions).

A bucket counts the events of one trigger for one `for_each` value. A decision to fire
is appended to the bucket's `pending` list in the same write that changes its state; the
engine then claims each pending firing (a conditional put keyed by automation, bucket
and window) and removes it. So a firing decided once is claimed exactly once, even when
the process dies between the two writes and the events are delivered again.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from stratoflow.automations.matching import is_after
from stratoflow.automations.models import CompoundTrigger, EventTrigger, SequenceTrigger
from stratoflow.events.labels import flow_run_of
from stratoflow.events.models import Event

EVENT_IDS_KEPT = 200
"""Ids of the last events counted in a bucket, to ignore a redelivered event."""
MAX_EVENT_DOCUMENT = 32 * 1024
FireState = Literal["triggered", "resolved"]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def event_document(event: Event) -> dict[str, Any]:
    """The event as JSON, kept with a firing (without its payload when that is large)."""
    document = event.model_dump(mode="json")
    if len(json.dumps(document, default=str)) > MAX_EVENT_DOCUMENT:
        document["payload"] = {"truncated": True}
    return document


def flow_run_of_document(document: dict[str, Any] | None) -> str | None:
    """The flow run an event kept with a firing is about (`labels.flow_run_of`); None
    when there is none, or the document is not an event."""
    if not document:
        return None
    try:
        return flow_run_of(Event.model_validate(document))
    except ValidationError:
        return None


@dataclass(frozen=True)
class Fire:
    """A decision that a trigger fired (or, Proactive, resolved) for one window."""

    trigger: str
    bucket: str
    window: str
    state: FireState
    at: datetime
    event: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        """Unique per automation: the firing item's sort key is `FIRED#<id>`."""
        suffix = "#resolved" if self.state == "resolved" else ""
        return f"{self.bucket}#{self.window}{suffix}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": iso(self.at)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Fire:
        return cls(**{**raw, "at": datetime.fromisoformat(raw["at"])})


@dataclass
class Bucket:
    trigger: str
    """The path of the trigger (`trigger`, `trigger.triggers[0]`, ...)."""
    key: str
    values: str = ""
    count: int = 0
    window_start: datetime | None = None
    window_opener: str = ""
    """The id of the event that opened the window ("" when time opened it)."""
    after_event: dict[str, Any] | None = None
    """The `after` event that armed the bucket (None: not armed)."""
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    event_ids: list[str] = field(default_factory=list)
    fired: Fire | None = None
    """Proactive: the firing of this bucket that has not resolved yet."""
    children: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Compound and sequence: child index -> when it fired, its firing id and event."""
    pending: list[Fire] = field(default_factory=list)
    version: int = 0

    @property
    def window(self) -> str:
        assert self.window_start is not None
        start = iso(self.window_start)
        return f"{start}~{self.window_opener}" if self.window_opener else start

    def to_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "key": self.key,
            "values": self.values,
            "count": self.count,
            "window_start": iso(self.window_start) if self.window_start else None,
            "window_opener": self.window_opener,
            "after_event": self.after_event,
            "first_seen": iso(self.first_seen) if self.first_seen else None,
            "last_seen": iso(self.last_seen) if self.last_seen else None,
            "event_ids": list(self.event_ids),
            "fired": self.fired.to_dict() if self.fired else None,
            "children": self.children,
            "pending": [f.to_dict() for f in self.pending],
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Bucket:
        return cls(
            trigger=raw["trigger"],
            key=raw["key"],
            values=raw.get("values", ""),
            count=int(raw.get("count", 0)),
            window_start=parse_time(raw.get("window_start")),
            window_opener=raw.get("window_opener", ""),
            after_event=raw.get("after_event"),
            first_seen=parse_time(raw.get("first_seen")),
            last_seen=parse_time(raw.get("last_seen")),
            event_ids=list(raw.get("event_ids", [])),
            fired=Fire.from_dict(raw["fired"]) if raw.get("fired") else None,
            children=dict(raw.get("children") or {}),
            pending=[Fire.from_dict(f) for f in raw.get("pending", [])],
            version=int(raw.get("version", 0)),
        )


def _next(bucket: Bucket | None, trigger_path: str, key: str, values: str) -> Bucket:
    if bucket is None:
        return Bucket(trigger=trigger_path, key=key, values=values)
    return copy.deepcopy(bucket)


def _remember(bucket: Bucket, seen_id: str, moment: datetime) -> None:
    bucket.event_ids = [*bucket.event_ids, seen_id][-EVENT_IDS_KEPT:]
    bucket.first_seen = bucket.first_seen or moment
    bucket.last_seen = moment


def _close_window(bucket: Bucket) -> None:
    bucket.window_start = None
    bucket.window_opener = ""
    bucket.count = 0


def due_at(bucket: Bucket, *, proactive_within: float | None) -> datetime | None:
    """When the scheduler tick must look at the bucket: the end of an open Proactive
    window, or now for a firing still to settle; None when only events change it."""
    times = [fire.at for fire in bucket.pending]
    if proactive_within is not None and bucket.window_start is not None:
        times.append(bucket.window_start + timedelta(seconds=proactive_within))
    return min(times) if times else None


def sort_time(moment: datetime) -> str:
    """A fixed-width UTC timestamp: sorts as the instants do."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# Event triggers


def count_event(
    trigger: EventTrigger,
    bucket: Bucket | None,
    event: Event,
    *,
    trigger_path: str,
    key: str,
    values: str,
) -> Bucket:
    """The bucket after `event` (which the trigger covers and the bucket has not seen)."""
    updated = _next(bucket, trigger_path, key, values)
    _remember(updated, event.id, event.occurred)
    if trigger.posture == "Reactive":
        _reactive(trigger, updated, event)
    elif trigger.after:
        _proactive_after(trigger, updated, event)
    else:
        _proactive_rolling(trigger, updated, event)
    return updated


def _window_over(trigger: EventTrigger, bucket: Bucket, moment: datetime) -> bool:
    return (
        trigger.within > 0
        and bucket.window_start is not None
        and moment >= bucket.window_start + timedelta(seconds=trigger.within)
    )


def _reactive(trigger: EventTrigger, bucket: Bucket, event: Event) -> None:
    moment = event.occurred
    if trigger.after:
        if _window_over(trigger, bucket, moment):
            _close_window(bucket)  # the window the `after` event opened has passed
            bucket.after_event = None
        if is_after(trigger, event):
            if bucket.after_event is None:
                bucket.after_event = event_document(event)
                bucket.window_start, bucket.window_opener = moment, event.id
            return
        if bucket.after_event is None:
            return  # not armed: expect events count only after an `after` event
    elif _window_over(trigger, bucket, moment):
        _close_window(bucket)
    if bucket.window_start is None:
        bucket.window_start, bucket.window_opener = moment, event.id
    bucket.count += 1
    if bucket.count >= trigger.threshold:
        bucket.pending.append(
            Fire(
                bucket.trigger,
                bucket.key,
                bucket.window,
                "triggered",
                moment,
                event_document(event),
            )
        )
        _close_window(bucket)
        bucket.after_event = None


def _deadline(trigger: EventTrigger, bucket: Bucket) -> None:
    """Proactive with `after`: the window ended with too few events; fire (the count goes
    on, towards resolving)."""
    assert bucket.window_start is not None
    end = bucket.window_start + timedelta(seconds=trigger.within)
    fire = Fire(bucket.trigger, bucket.key, bucket.window, "triggered", end, bucket.after_event)
    bucket.pending.append(fire)
    bucket.fired = fire
    bucket.window_start, bucket.window_opener = None, ""


def _proactive_after(trigger: EventTrigger, bucket: Bucket, event: Event) -> None:
    moment = event.occurred
    if is_after(trigger, event):
        if _window_over(trigger, bucket, moment):
            _deadline(trigger, bucket)  # the tick has not seen it yet
        if bucket.window_start is None:
            _close_window(bucket)
            bucket.fired = None  # a new `after` event starts over: no resolve for the old one
            bucket.after_event = event_document(event)
            bucket.window_start, bucket.window_opener = moment, event.id
        return
    if bucket.window_start is None and bucket.fired is None:
        return  # not armed
    if _window_over(trigger, bucket, moment):
        _deadline(trigger, bucket)
    bucket.count += 1
    if bucket.count < trigger.threshold:
        return
    if bucket.fired is not None:
        bucket.pending.append(_resolution(bucket, event))
        bucket.fired = None
    _close_window(bucket)
    bucket.after_event = None


def _resolution(bucket: Bucket, event: Event | None, at: datetime | None = None) -> Fire:
    assert bucket.fired is not None
    moment = at or (event.occurred if event else bucket.fired.at)
    document = event_document(event) if event else None
    return Fire(bucket.trigger, bucket.key, bucket.fired.window, "resolved", moment, document)


def _roll(trigger: EventTrigger, bucket: Bucket, now: datetime) -> None:
    """Proactive without `after`: close every window that ended by `now`, firing for one
    with too few events. Windows follow each other; after a long gap (nobody evaluated)
    the next window starts now."""
    within = timedelta(seconds=trigger.within)
    while bucket.window_start is not None and now >= bucket.window_start + within:
        end = bucket.window_start + within
        if bucket.count < trigger.threshold:
            fire = Fire(bucket.trigger, bucket.key, bucket.window, "triggered", end)
            bucket.pending.append(fire)
            bucket.fired = fire
        bucket.count = 0
        bucket.window_start = end if now < end + within else now
        bucket.window_opener = ""


def _proactive_rolling(trigger: EventTrigger, bucket: Bucket, event: Event) -> None:
    if bucket.window_start is None:
        bucket.window_start, bucket.window_opener = event.occurred, event.id
    _roll(trigger, bucket, event.occurred)
    bucket.count += 1
    if bucket.fired is not None and bucket.count >= trigger.threshold:
        bucket.pending.append(_resolution(bucket, event))
        bucket.fired = None


def advance_time(
    trigger: EventTrigger, bucket: Bucket | None, now: datetime, *, trigger_path: str, key: str
) -> Bucket | None:
    """A Proactive bucket at `now` (the scheduler tick); None when nothing changed.
    Without `after` and `for_each`, the bucket is created here: watching starts now."""
    if trigger.posture != "Proactive":
        return None
    updated = _next(bucket, trigger_path, key, "")
    if trigger.after:
        if not _window_over(trigger, updated, now):
            return None
        _deadline(trigger, updated)
        return updated
    if updated.window_start is None:
        if trigger.for_each:
            return None  # for_each buckets start with their first event
        updated.window_start = now
    _roll(trigger, updated, now)
    return None if bucket is not None and updated == bucket else updated


# Compound and sequence triggers


def _window_of(first: dict[str, Any]) -> str:
    digest = hashlib.sha256(str(first["id"]).encode()).hexdigest()[:16]
    return f"{first['at']}~{digest}"


def count_child(
    trigger: CompoundTrigger | SequenceTrigger,
    bucket: Bucket | None,
    index: int,
    fire: Fire,
    *,
    trigger_path: str,
    key: str,
) -> Bucket:
    """The bucket of a compound or sequence trigger after its child `index` fired."""
    updated = _next(bucket, trigger_path, key, "")
    _remember(updated, fire.id, fire.at)
    record = {"at": iso(fire.at), "id": fire.id, "event": fire.event}
    children = updated.children
    if trigger.within > 0:
        oldest = fire.at - timedelta(seconds=trigger.within)
        expired = [k for k, c in children.items() if datetime.fromisoformat(c["at"]) < oldest]
        if isinstance(trigger, SequenceTrigger) and expired:
            children.clear()  # the sequence took too long: start again
        for k in expired:
            children.pop(k, None)
    if isinstance(trigger, CompoundTrigger):
        children[str(index)] = record
        done = len(children) >= trigger.required
    else:
        if index == 0:
            children.clear()
        elif any(str(j) not in children for j in range(index)) or (
            datetime.fromisoformat(children[str(index - 1)]["at"]) > fire.at
        ):
            return updated  # out of order: ignored
        children[str(index)] = record
        done = len(children) == len(trigger.triggers)
    if done:
        first = min(children.values(), key=lambda c: (c["at"], c["id"]))
        updated.pending.append(
            Fire(trigger_path, key, _window_of(first), "triggered", fire.at, fire.event)
        )
        children.clear()
    return updated
