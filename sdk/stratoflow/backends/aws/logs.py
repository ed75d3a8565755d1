"""Run log lines shipped to CloudWatch Logs: one stream per flow run, one JSON object per line.

`CloudWatchLogShipper.write()` only appends to an in-memory buffer; a daemon thread ships
the buffer every `flush_seconds` (sooner when a full batch is waiting) and `flush()` ships
it synchronously. The lines are JSON in the aws-lambda-powertools Logger format, so the
same CloudWatch Logs Insights queries work on flow run logs and on the Lambda functions'.

When CloudWatch cannot be reached (after botocore's own retries), the lines stay in the
buffer, in order, and go out at a later flush. The buffer keeps at most
`max_buffer_lines`; beyond that the oldest lines are dropped and counted in `dropped`.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from stratoflow.backends.aws.log_lines import (
    EVENT_OVERHEAD_BYTES,
    format_line,
    parse_line,
    timestamp_ms,
    utf8_size,
)
from stratoflow.models import LogEntry
from stratoflow.resources import log_stream_name

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import InputLogEventTypeDef, PutLogEventsResponseTypeDef

# PutLogEvents service limits
MAX_BATCH_EVENTS = 10_000
"""Events in one PutLogEvents call."""
MAX_BATCH_BYTES = 1_048_576
"""Bytes in one PutLogEvents call: the sum of each event's UTF-8 message size plus overhead."""
MAX_BATCH_SPAN_MS = 24 * 60 * 60 * 1000
"""The events of one call must lie within 24 hours of each other."""
GET_LOG_EVENTS_PAGE_LIMIT = 10_000


logger = logging.getLogger("stratoflow.cloudwatch")
"""Where the shipper reports its own trouble (never through the shipper itself)."""


@dataclass(frozen=True, slots=True)
class _Event:
    seq: int
    """Order of arrival, so lines put back after a failed flush keep their place."""
    stream: str
    timestamp: int
    message: str
    size: int
    """UTF-8 size of the message plus EVENT_OVERHEAD_BYTES."""


def _batches(events: Sequence[_Event]) -> Iterator[list[_Event]]:
    """Events (sorted by timestamp) cut into PutLogEvents calls within the service limits."""
    batch: list[_Event] = []
    size = 0
    for event in events:
        if batch and (
            len(batch) >= MAX_BATCH_EVENTS
            or size + event.size > MAX_BATCH_BYTES
            or event.timestamp - batch[0].timestamp >= MAX_BATCH_SPAN_MS
        ):
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += event.size
    if batch:
        yield batch


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# The shipper


class CloudWatchLogShipper:
    """Buffers run log lines and ships them to one CloudWatch Logs group.

    `client` is a boto3 CloudWatch Logs client (configured with botocore's retry mode:
    the shipper never retries a call itself, it keeps the lines for the next flush).
    """

    def __init__(
        self,
        client: CloudWatchLogsClient,
        log_group: str,
        *,
        flush_seconds: float = 2.0,
        max_buffer_lines: int = 10000,
    ) -> None:
        if flush_seconds <= 0:
            raise ValueError("flush_seconds must be positive")
        if max_buffer_lines < 1:
            raise ValueError("max_buffer_lines must be at least 1")
        self.client = client
        self.log_group = log_group
        self.flush_seconds = flush_seconds
        self.max_buffer_lines = max_buffer_lines
        self.dropped = 0
        """Lines dropped, oldest first, because the buffer was full."""
        self.rejected = 0
        """Lines CloudWatch refused (too old, too new, or an invalid batch); not retried."""

        self._lock = threading.Lock()  # guards the buffer and the counters
        self._buffer: deque[_Event] = deque()
        self._buffered_bytes = 0
        self._seq = itertools.count()
        self._unreported_drops = False
        self._flush_lock = threading.Lock()  # one flush at a time
        self._streams: set[str] = set()  # streams known to exist (used under _flush_lock)
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()

    # Writing

    def write(self, entries: Sequence[LogEntry]) -> None:
        """Buffer the lines for the flusher thread; never blocks on the network, never raises."""
        if not entries:
            return
        try:
            lines = [self._line(entry) for entry in entries]
        except Exception:  # logging must never break a run
            logger.warning(
                "Could not format %d log lines for CloudWatch", len(entries), exc_info=True
            )
            return
        try:
            with self._lock:
                for stream, timestamp, message in lines:
                    size = utf8_size(message) + EVENT_OVERHEAD_BYTES
                    self._buffer.append(_Event(next(self._seq), stream, timestamp, message, size))
                    self._buffered_bytes += size
                self._trim()
                full = (
                    len(self._buffer) >= MAX_BATCH_EVENTS or self._buffered_bytes >= MAX_BATCH_BYTES
                )
            self._ensure_thread()
            if full:
                self._wake.set()
        except Exception:
            logger.warning("Could not buffer log lines for CloudWatch", exc_info=True)

    @staticmethod
    def _line(entry: LogEntry) -> tuple[str, int, str]:
        """Stream, timestamp (ms) and message of one entry (formatted outside the lock)."""
        stream = log_stream_name(entry.flow_run_id, entry.task_run_id)
        return stream, timestamp_ms(entry.timestamp), format_line(entry)

    def _trim(self) -> None:
        """Drop the oldest lines beyond max_buffer_lines (hold _lock)."""
        excess = len(self._buffer) - self.max_buffer_lines
        for _ in range(max(excess, 0)):
            self._buffered_bytes -= self._buffer.popleft().size
        if excess > 0:
            self.dropped += excess
            self._unreported_drops = True

    @property
    def buffered(self) -> int:
        """Lines waiting to be shipped."""
        with self._lock:
            return len(self._buffer)

    # The flusher thread

    def _ensure_thread(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._wake.clear()
            self._thread = threading.Thread(
                target=self._run, name="stratoflow-cloudwatch-logs", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        healthy = True
        while True:
            if healthy:
                self._wake.wait(self.flush_seconds)  # woken early by a full batch or close()
            else:
                # CloudWatch is failing: wait a full period even when the buffer is full.
                self._stop.wait(self.flush_seconds)
            if self._stop.is_set():
                return
            self._wake.clear()
            try:
                healthy = self._flush()
            except Exception:
                logger.warning("Shipping log lines to CloudWatch failed", exc_info=True)
                healthy = False

    # Flushing

    def flush(self) -> None:
        """Ship everything buffered now; on failure the lines stay buffered (never raises)."""
        try:
            self._flush()
        except Exception:
            logger.warning("Shipping log lines to CloudWatch failed", exc_info=True)

    def close(self) -> None:
        """Stop the flusher thread and ship what is left."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self.flush()

    def _flush(self) -> bool:
        """Ship the buffer; True when everything went out."""
        with self._flush_lock:
            with self._lock:
                pending = list(self._buffer)
                self._buffer.clear()
                self._buffered_bytes = 0
            done: set[int] = set()  # seq of lines shipped (or refused for good)
            failure: Exception | None = None
            try:
                by_stream: dict[str, list[_Event]] = {}
                for event in pending:
                    by_stream.setdefault(event.stream, []).append(event)
                for stream, events in by_stream.items():
                    try:
                        self._ship_stream(stream, events, done)
                    except Exception as exc:  # noqa: BLE001 - keep the lines, try later
                        failure = exc
                        break  # CloudWatch is failing: spare the other streams' calls
            finally:
                # Whatever happened (even an interrupt), lines not shipped go back.
                unsent = [event for event in pending if event.seq not in done]
                if unsent:
                    self._requeue(unsent)
                self._report_drops()
            if failure is not None:
                logger.warning(
                    "CloudWatch Logs unavailable; %d log lines kept for the next flush: %s",
                    len(unsent),
                    failure,
                )
                return False
            return True

    def _requeue(self, unsent: list[_Event]) -> None:
        """Put lines that were not shipped back at the front, in their original order."""
        unsent.sort(key=lambda event: event.seq)
        with self._lock:
            self._buffer.extendleft(reversed(unsent))
            self._buffered_bytes += sum(event.size for event in unsent)
            self._trim()

    def _report_drops(self) -> None:
        with self._lock:
            report = self._unreported_drops
            self._unreported_drops = False
            dropped = self.dropped
        if report:
            logger.warning(
                "CloudWatch log buffer full (%d lines): dropped %d oldest log lines so far",
                self.max_buffer_lines,
                dropped,
            )

    def _ship_stream(self, stream: str, events: list[_Event], done: set[int]) -> None:
        """Ship one stream's events in timestamp order, adding each shipped seq to `done`."""
        ordered = sorted(events, key=lambda event: event.timestamp)  # stable: ties keep order
        for batch in _batches(ordered):
            try:
                self._put(stream, batch)
            except ClientError as exc:
                if _error_code(exc) != "InvalidParameterException":
                    raise
                # CloudWatch will never take this batch: sending it again at every flush
                # would hold back every later line.
                with self._lock:
                    self.rejected += len(batch)
                logger.warning(
                    "CloudWatch Logs refused %d log lines of stream %s: %s", len(batch), stream, exc
                )
            done.update(event.seq for event in batch)

    def _put(self, stream: str, batch: list[_Event]) -> None:
        if stream not in self._streams:
            self._create_stream(stream)
        log_events: list[InputLogEventTypeDef] = [
            {"timestamp": event.timestamp, "message": event.message} for event in batch
        ]
        try:
            response = self.client.put_log_events(
                logGroupName=self.log_group, logStreamName=stream, logEvents=log_events
            )
        except ClientError as exc:
            if _error_code(exc) != "ResourceNotFoundException":
                raise
            # The stream was deleted (or never made it): create it and send once more.
            # If the log group itself is missing, creating the stream raises.
            self._streams.discard(stream)
            self._create_stream(stream)
            response = self.client.put_log_events(
                logGroupName=self.log_group, logStreamName=stream, logEvents=log_events
            )
        self._count_rejected(stream, response, len(batch))

    def _create_stream(self, stream: str) -> None:
        try:
            self.client.create_log_stream(logGroupName=self.log_group, logStreamName=stream)
        except ClientError as exc:
            if _error_code(exc) != "ResourceAlreadyExistsException":
                raise
        self._streams.add(stream)

    def _count_rejected(
        self, stream: str, response: PutLogEventsResponseTypeDef, count: int
    ) -> None:
        info = response.get("rejectedLogEventsInfo")
        if not info:
            return
        rejected = set[int]()
        if "tooNewLogEventStartIndex" in info:
            rejected.update(range(info["tooNewLogEventStartIndex"], count))
        if "tooOldLogEventEndIndex" in info:
            rejected.update(range(info["tooOldLogEventEndIndex"] + 1))
        if "expiredLogEventEndIndex" in info:
            rejected.update(range(info["expiredLogEventEndIndex"] + 1))
        if not rejected:
            return
        with self._lock:
            self.rejected += len(rejected)
        logger.warning(
            "CloudWatch Logs rejected %d log lines of stream %s (too old or too far in "
            "the future): %s",
            len(rejected),
            stream,
            info,
        )

    # Reading

    def read(
        self,
        flow_run_id: str | None,
        task_run_id: str | None = None,
        *,
        start_time: datetime | None = None,
    ) -> list[LogEntry]:
        """The lines of a flow run (or of a task run outside any flow), oldest first.

        With `task_run_id`, only that task run's lines. A missing stream gives [].
        Lines still in the buffer are not included: `flush()` first to see them.
        """
        stream = log_stream_name(flow_run_id, task_run_id)
        kwargs: dict[str, Any] = {
            "logGroupName": self.log_group,
            "logStreamName": stream,
            "startFromHead": True,
            "limit": GET_LOG_EVENTS_PAGE_LIMIT,
        }
        if start_time is not None:
            kwargs["startTime"] = timestamp_ms(start_time)
        entries: list[LogEntry] = []
        token: str | None = None
        while True:
            if token is not None:
                kwargs["nextToken"] = token
            try:
                page = self.client.get_log_events(**kwargs)
            except ClientError as exc:
                if _error_code(exc) == "ResourceNotFoundException":
                    return []
                raise
            for event in page.get("events", []):
                entries.append(
                    parse_line(
                        event.get("message", ""),
                        event.get("timestamp", 0),
                        flow_run_id=flow_run_id,
                        task_run_id=task_run_id,
                    )
                )
            next_token = page.get("nextForwardToken")
            if next_token is None or next_token == token:
                break
            token = next_token
        if task_run_id is not None:
            entries = [entry for entry in entries if entry.task_run_id == task_run_id]
        return entries
