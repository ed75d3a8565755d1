"""What every automation store offers: automations by id and name, buckets written with
optimistic concurrency, firings claimed once. `AutomationStore` (store.py) keeps them
in DynamoDB, `MemoryAutomationStore` (memory.py) in this process."""

from __future__ import annotations

import builtins
import difflib
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from stratoflow.automations.buckets import Bucket, Fire
from stratoflow.automations.models import Automation
from stratoflow.clock import Clock, SystemClock
from stratoflow.exceptions import ObjectNotFound, StratoflowError

BUCKET_TTL = timedelta(days=30)
FIRING_TTL = timedelta(days=7)


class UnknownAutomation(ObjectNotFound):
    """No automation has that id or name."""


class DuplicateAutomationName(StratoflowError):
    """Another automation already has that name."""


@dataclass(frozen=True)
class AutomationRecord:
    """An automation as stored, with what happened to it."""

    automation: Automation
    created: datetime
    updated: datetime
    last_fired: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None

    @property
    def id(self) -> str:
        assert self.automation.id is not None
        return self.automation.id

    @property
    def name(self) -> str:
        return self.automation.name

    @property
    def enabled(self) -> bool:
        return self.automation.enabled


@dataclass(frozen=True)
class FiringRecord:
    """A firing as claimed (kept FIRING_TTL): which trigger fired (or, Proactive,
    resolved) for which bucket and window, when, and the event that made it fire."""

    id: str
    trigger: str
    """The trigger's path in the automation (`trigger`, `trigger.triggers[1]`, ...)."""
    bucket: str
    window: str
    state: str
    """`triggered` or `resolved`."""
    fired_at: datetime
    event_id: str | None = None
    event_flow_run_id: str | None = None
    """The flow run the event is about, if any: a flow-run or task-run state event is
    not stored by default but derived from its run when read, found through it."""


def expiry(moment: datetime, ttl: timedelta, within: float = 0) -> int:
    """Epoch seconds for `expires_at`: `ttl` (or twice the window, when longer) later."""
    return int((moment + max(ttl, timedelta(seconds=2 * within))).timestamp())


def _looks_like_id(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


class BaseAutomationStore(ABC):
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()

    # Automations

    def create(self, automation: Automation) -> AutomationRecord:
        """Store a new automation (given an id when it has none); its name must be new."""
        now = self.clock.now()
        record = AutomationRecord(automation.with_id(), created=now, updated=now)
        self._insert(record)
        return record

    def get(self, automation_id: str) -> AutomationRecord:
        record = self._get(automation_id)
        if record is None:
            raise UnknownAutomation(f"No automation with id {automation_id!r}.")
        return record

    def find(self, name_or_id: str) -> AutomationRecord:
        """By id, else by name; an unknown one is a one-line error with suggestions."""
        if _looks_like_id(name_or_id):
            record = self._get(name_or_id)
            if record is not None:
                return record
        found = self._id_by_name(name_or_id)
        record = self._get(found) if found else None
        if record is None:
            names = [r.name for r in self.list()]
            close = difflib.get_close_matches(name_or_id, names, n=3)
            hint = (
                f" Did you mean {', '.join(map(repr, close))}?"
                if close
                else (f" Known: {', '.join(sorted(names)[:10])}." if names else " None exists yet.")
            )
            raise UnknownAutomation(f"No automation named {name_or_id!r}.{hint}")
        return record

    def delete(self, name_or_id: str) -> AutomationRecord:
        record = self.find(name_or_id)
        self._delete(record)
        return record

    def set_enabled(self, name_or_id: str, enabled: bool) -> AutomationRecord:
        record = self.find(name_or_id)
        self._set_enabled(record.id, enabled)
        automation = record.automation.model_copy(update={"enabled": enabled})
        return replace(record, automation=automation, updated=self.clock.now())

    @abstractmethod
    def list(self) -> list[AutomationRecord]:
        """Every automation, by name (one query when there are none)."""

    @abstractmethod
    def record_outcome(self, automation_id: str, *, fired_at: datetime, error: str | None) -> None:
        """Note a firing (and the last action error, if any) on the automation."""

    @abstractmethod
    def _insert(self, record: AutomationRecord) -> None: ...

    @abstractmethod
    def _get(self, automation_id: str) -> AutomationRecord | None: ...

    @abstractmethod
    def _id_by_name(self, name: str) -> str | None: ...

    @abstractmethod
    def _set_enabled(self, automation_id: str, enabled: bool) -> None: ...

    @abstractmethod
    def _delete(self, record: AutomationRecord) -> None: ...

    # Buckets and firings

    @abstractmethod
    def read_bucket(self, automation_id: str, key: str) -> Bucket | None: ...

    @abstractmethod
    def list_buckets(self, automation_id: str) -> builtins.list[Bucket]: ...

    @abstractmethod
    @abstractmethod
    def due_buckets(self, automation_id: str, now: datetime) -> builtins.list[Bucket]:
        """The buckets due at `now` (see `buckets.due_at`), in one query."""

    @abstractmethod
    def write_bucket(
        self,
        automation_id: str,
        bucket: Bucket,
        *,
        seen_id: str | None,
        due: datetime | None,
        expires_at: int,
    ) -> bool:
        """Write `bucket` as version `bucket.version + 1` if the stored one is still at
        `bucket.version` (0: none) and has not counted `seen_id`; False otherwise. `due`
        puts it in the automation's due index (None takes it out)."""

    @abstractmethod
    def claim_firing(self, automation_id: str, fire: Fire, *, expires_at: int) -> bool:
        """Record the firing unless it exists: True for exactly one caller."""

    @abstractmethod
    def list_firings(self, automation_id: str, *, limit: int = 50) -> builtins.list[FiringRecord]:
        """The automation's firings of the last FIRING_TTL, latest first, at most `limit`
        (what `strato automation inspect` and the UI's automation page show)."""


def duplicate_message(name: str) -> str:
    return (
        f"An automation named {name!r} already exists; choose another name, or delete it "
        f"first (strato automation delete {name!r})."
    )
