"""Automations, buckets and firings in this process: the store of unit tests, with the
same conditional writes as the DynamoDB one."""

from __future__ import annotations

import builtins
import copy
import threading
from dataclasses import replace
from datetime import datetime

from stratoflow.automations.base import (
    AutomationRecord,
    BaseAutomationStore,
    DuplicateAutomationName,
    FiringRecord,
    duplicate_message,
)
from stratoflow.automations.buckets import Bucket, Fire, flow_run_of_document
from stratoflow.clock import Clock


class MemoryAutomationStore(BaseAutomationStore):
    """Everything in this process (unit tests)."""

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self._lock = threading.Lock()
        self._automations: dict[str, AutomationRecord] = {}
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._due: dict[tuple[str, str], datetime] = {}
        self.firings: dict[tuple[str, str], Fire] = {}
        self.queries = 0
        """Reads that would be a DynamoDB Query (list, list_buckets, due_buckets)."""

    def list(self) -> list[AutomationRecord]:
        with self._lock:
            self.queries += 1
            return sorted(self._automations.values(), key=lambda r: r.name)

    def record_outcome(self, automation_id: str, *, fired_at: datetime, error: str | None) -> None:
        with self._lock:
            record = self._automations.get(automation_id)
            if record is None:
                return
            if error is None:
                record = replace(record, last_fired=fired_at)
            else:
                record = replace(
                    record, last_fired=fired_at, last_error=error, last_error_at=self.clock.now()
                )
            self._automations[automation_id] = record

    def _insert(self, record: AutomationRecord) -> None:
        with self._lock:
            if any(r.name == record.name for r in self._automations.values()):
                raise DuplicateAutomationName(duplicate_message(record.name))
            if record.id in self._automations:
                raise DuplicateAutomationName(f"An automation with id {record.id} exists.")
            self._automations[record.id] = record

    def _get(self, automation_id: str) -> AutomationRecord | None:
        with self._lock:
            return self._automations.get(automation_id)

    def _id_by_name(self, name: str) -> str | None:
        with self._lock:
            return next((r.id for r in self._automations.values() if r.name == name), None)

    def _set_enabled(self, automation_id: str, enabled: bool) -> None:
        with self._lock:
            record = self._automations[automation_id]
            automation = record.automation.model_copy(update={"enabled": enabled})
            self._automations[automation_id] = replace(
                record, automation=automation, updated=self.clock.now()
            )

    def _delete(self, record: AutomationRecord) -> None:
        with self._lock:
            self._automations.pop(record.id, None)
            for key in [k for k in self._buckets if k[0] == record.id]:
                del self._buckets[key]
                self._due.pop(key, None)
            for key in [k for k in self.firings if k[0] == record.id]:
                del self.firings[key]

    def read_bucket(self, automation_id: str, key: str) -> Bucket | None:
        with self._lock:
            bucket = self._buckets.get((automation_id, key))
            return copy.deepcopy(bucket)

    def list_buckets(self, automation_id: str) -> builtins.list[Bucket]:
        with self._lock:
            self.queries += 1
            return [
                copy.deepcopy(b)
                for (owner, _), b in sorted(self._buckets.items())
                if owner == automation_id
            ]

    def due_buckets(self, automation_id: str, now: datetime) -> builtins.list[Bucket]:
        with self._lock:
            self.queries += 1
            return [
                copy.deepcopy(self._buckets[key])
                for key, due in sorted(self._due.items(), key=lambda kv: kv[1])
                if key[0] == automation_id and due <= now
            ]

    def write_bucket(
        self,
        automation_id: str,
        bucket: Bucket,
        *,
        seen_id: str | None,
        due: datetime | None,
        expires_at: int,
    ) -> bool:
        with self._lock:
            stored = self._buckets.get((automation_id, bucket.key))
            version = stored.version if stored else 0
            if version != bucket.version:
                return False
            if seen_id is not None and stored is not None and seen_id in stored.event_ids:
                return False
            self._buckets[(automation_id, bucket.key)] = replace(
                copy.deepcopy(bucket), version=bucket.version + 1
            )
            if due is None:
                self._due.pop((automation_id, bucket.key), None)
            else:
                self._due[(automation_id, bucket.key)] = due
            return True

    def claim_firing(self, automation_id: str, fire: Fire, *, expires_at: int) -> bool:
        with self._lock:
            if (automation_id, fire.id) in self.firings:
                return False
            self.firings[(automation_id, fire.id)] = fire
            return True

    def list_firings(self, automation_id: str, *, limit: int = 50) -> builtins.list[FiringRecord]:
        with self._lock:
            fires = [fire for (owner, _), fire in self.firings.items() if owner == automation_id]
        records = [
            FiringRecord(
                id=fire.id,
                trigger=fire.trigger,
                bucket=fire.bucket,
                window=fire.window,
                state=fire.state,
                fired_at=fire.at,
                event_id=(fire.event or {}).get("id"),
                event_flow_run_id=flow_run_of_document(fire.event),
            )
            for fire in fires
        ]
        records.sort(key=lambda record: record.fired_at, reverse=True)
        return records[:limit]
