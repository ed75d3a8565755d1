"""What every event derivation reads: one DynamoDB stream record (`StreamChange`), the
error for an item that cannot be read, deterministic event ids, and the readers of the
plain values items hold (which a worker may have written: never trusted to be well formed).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from stratoflow import resources
from stratoflow.exceptions import StratoflowError

NAMESPACE = uuid.UUID("6f1f4a52-4c3e-5b8e-9d0a-3a7f2c1b9e01")
"""uuid5 namespace of derived event ids."""

StreamEventName = Literal["INSERT", "MODIFY", "REMOVE"]


class UnreadableRecord(StratoflowError, ValueError):
    """A stream record whose item cannot be read (a malformed state, definition or event)."""


@dataclass(frozen=True)
class StreamChange:
    """One DynamoDB stream record, its images deserialized (TypeDeserializer)."""

    event_name: StreamEventName
    new_image: Mapping[str, Any] | None = None
    old_image: Mapping[str, Any] | None = None
    sequence_number: str | None = None
    approximate_time: datetime | None = None
    """When the write happened (the record's ApproximateCreationDateTime): the time of
    pause, resume and delete events (now, without it)."""

    @property
    def image(self) -> Mapping[str, Any]:
        image = self.new_image or self.old_image
        if not image:
            raise UnreadableRecord(
                f"A {self.event_name} record without item images: the table's stream must "
                f"use the {resources.STREAM_VIEW_TYPE} view type."
            )
        return image

    @property
    def keys(self) -> tuple[str, str]:
        image = self.image
        return str(image.get(resources.PARTITION_KEY, "")), str(image.get(resources.SORT_KEY, ""))


def event_id(resource_id: str, token: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{resource_id}/{token}"))


def moment_of(value: Any, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise UnreadableRecord(f"{what} is not an ISO time: {value!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def number_of(value: Any, what: str) -> int:
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return int(value)
    raise UnreadableRecord(f"{what} is not a number: {value!r}")


def strings_of(value: Any) -> list[str]:
    if not value:
        return []
    return [str(v) for v in value] if isinstance(value, list | set | tuple) else []
