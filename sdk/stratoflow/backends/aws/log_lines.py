"""One log line as CloudWatch keeps it: JSON in the aws-lambda-powertools Logger format."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from stratoflow.models import LogEntry

MAX_EVENT_BYTES = 262_144
"""The size of one event, overhead included (256 KB)."""
EVENT_OVERHEAD_BYTES = 26
"""What CloudWatch adds to each event's message size when counting a batch's bytes."""
MAX_MESSAGE_BYTES = MAX_EVENT_BYTES - EVENT_OVERHEAD_BYTES
"""The longest message of one event, in UTF-8 bytes; longer ones are truncated."""
TRUNCATION_MARKER = " ...[truncated by stratoflow]"
SERVICE = "stratoflow"
"""The `service` key of every line (as aws-lambda-powertools' Logger writes it)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _aware(timestamp: datetime) -> datetime:
    """Naive timestamps are taken as UTC."""
    return timestamp if timestamp.tzinfo is not None else timestamp.replace(tzinfo=UTC)


def timestamp_ms(timestamp: datetime) -> int:
    """Milliseconds since the epoch, in exact integer arithmetic."""
    return (_aware(timestamp) - _EPOCH) // timedelta(milliseconds=1)


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8"))


def _clip_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of `text` that fits in `max_bytes` UTF-8 bytes."""
    return text.encode("utf-8")[: max(max_bytes, 0)].decode("utf-8", errors="ignore")


def _valid_utf8(text: str) -> str:
    """Lone surrogates (from surrogateescape'd bytes, say) cannot be sent: replace them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="replace").decode("utf-8")
    return text


def format_line(entry: LogEntry) -> str:
    """The entry as one JSON object in the aws-lambda-powertools Logger format.

    Lines whose UTF-8 size exceeds MAX_MESSAGE_BYTES get their message truncated and
    TRUNCATION_MARKER appended, so the line stays valid JSON.
    """
    record: dict[str, Any] = {
        "level": entry.level_name,
        "location": entry.logger,
        "message": _valid_utf8(entry.message),
        "timestamp": _aware(entry.timestamp).astimezone(UTC).isoformat(timespec="milliseconds"),
        "service": SERVICE,
    }
    for key in ("flow_run_id", "flow_run_name", "task_run_id", "task_run_name"):
        value = getattr(entry, key)
        if value is not None:
            record[key] = _valid_utf8(str(value))
    line = _dumps(record)
    if utf8_size(line) <= MAX_MESSAGE_BYTES:
        return line
    message: str = record["message"]

    def clipped(length: int) -> str:
        return _dumps({**record, "message": message[:length] + TRUNCATION_MARKER})

    # The longest prefix of the message that fits once JSON-escaped (escapes such as \"
    # or \n take more bytes than the text): a binary search over its length in characters.
    low, high = 0, min(len(message), MAX_MESSAGE_BYTES)
    if utf8_size(clipped(0)) > MAX_MESSAGE_BYTES:
        # The other fields alone are too long: send the clipped raw text (read back as text).
        return _clip_utf8(line, MAX_MESSAGE_BYTES - utf8_size(TRUNCATION_MARKER)) + (
            TRUNCATION_MARKER
        )
    while low < high:
        middle = (low + high + 1) // 2
        if utf8_size(clipped(middle)) <= MAX_MESSAGE_BYTES:
            low = middle
        else:
            high = middle - 1
    return clipped(low)


def _dumps(record: dict[str, Any]) -> str:
    """Compact JSON with non-ASCII text kept as UTF-8, as aws-lambda-powertools writes it."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def _level_number(name: str) -> int:
    number = logging.getLevelNamesMapping().get(name)  # names added later count too
    if number is not None:
        return number
    if name.startswith("Level "):  # logging's name for an unnamed level
        try:
            return int(name.removeprefix("Level "))
        except ValueError:
            pass
    return logging.NOTSET


def parse_line(
    message: str, event_timestamp_ms: int, *, flow_run_id: str | None, task_run_id: str | None
) -> LogEntry:
    """A line written by `format_line` back as a LogEntry; other text as an INFO entry."""
    event_time = _EPOCH + timedelta(milliseconds=event_timestamp_ms)
    try:
        record = json.loads(message)
    except ValueError:
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("message"), str):
        return LogEntry(
            timestamp=event_time,
            level=logging.INFO,
            level_name="INFO",
            logger="",
            message=message,
            flow_run_id=flow_run_id,
            task_run_id=task_run_id if flow_run_id is None else None,
        )
    try:
        timestamp = _aware(datetime.fromisoformat(str(record["timestamp"])))
    except (KeyError, ValueError):
        timestamp = event_time
    level_name = str(record.get("level", "NOTSET"))

    def text(key: str) -> str | None:
        value = record.get(key)
        return None if value is None else str(value)

    return LogEntry(
        timestamp=timestamp,
        level=_level_number(level_name),
        level_name=level_name,
        logger=str(record.get("location", "")),
        message=record["message"],
        flow_run_id=text("flow_run_id"),
        task_run_id=text("task_run_id"),
        flow_run_name=text("flow_run_name"),
        task_run_name=text("task_run_name"),
    )


# Batches
