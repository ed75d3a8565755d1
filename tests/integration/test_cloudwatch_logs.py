"""CloudWatchLogShipper against moto: batching, ordering, outages, overflow, reading back."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from stratoflow.backends.aws import logs as cloudwatch_logs
from stratoflow.backends.aws.log_lines import (
    EVENT_OVERHEAD_BYTES,
    MAX_MESSAGE_BYTES,
    TRUNCATION_MARKER,
)
from stratoflow.backends.aws.logs import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    CloudWatchLogShipper,
    _batches,
    _Event,
)
from stratoflow.models import LogEntry
from stratoflow.resources import log_stream_name

LOG_GROUP = "/stratoflow/runs"
FLOW_RUN = "fr-1"


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(
            region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )


def _client(session: boto3.Session) -> Any:
    return session.client("logs", config=Config(retries={"mode": "standard", "max_attempts": 1}))


@pytest.fixture
def client(session: boto3.Session) -> Any:
    logs = _client(session)
    logs.create_log_group(logGroupName=LOG_GROUP)
    return logs


@pytest.fixture
def make_shipper(client: Any) -> Iterator[Callable[..., CloudWatchLogShipper]]:
    shippers: list[CloudWatchLogShipper] = []

    def make(**kwargs: Any) -> CloudWatchLogShipper:
        kwargs.setdefault("flush_seconds", 60.0)  # tests flush by hand unless they say so
        shipper = CloudWatchLogShipper(kwargs.pop("client", client), LOG_GROUP, **kwargs)
        shippers.append(shipper)
        return shipper

    yield make
    for shipper in shippers:  # inside mock_aws: stop the threads before the mock ends
        shipper._stop.set()
        shipper._wake.set()
        if shipper._thread is not None:
            shipper._thread.join(5)


@pytest.fixture
def put_calls(client: Any) -> list[list[dict[str, Any]]]:
    """The logEvents of every PutLogEvents call."""
    calls: list[list[dict[str, Any]]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(list(params["logEvents"]))

    client.meta.events.register("before-parameter-build.logs.PutLogEvents", record)
    return calls


class Outage:
    """Makes every PutLogEvents call fail while `on` is set."""

    def __init__(self, client: Any, error: Exception) -> None:
        self.on = False
        self.attempts = 0
        self.error = error
        client.meta.events.register("before-call.logs.PutLogEvents", self._maybe_fail)

    def _maybe_fail(self, **_: Any) -> None:
        if self.on:
            self.attempts += 1
            raise self.error


@pytest.fixture
def cloudwatch_warnings(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], list[str]]]:
    # `setup_logging()` stops the `stratoflow` logger propagating; caplog listens on the root.
    monkeypatch.setattr(logging.getLogger("stratoflow"), "propagate", True)
    with caplog.at_level(logging.WARNING, logger="stratoflow.cloudwatch"):
        yield lambda: [
            r.getMessage()
            for r in caplog.records
            if r.name == "stratoflow.cloudwatch" and r.levelno == logging.WARNING
        ]


_NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def entry(
    message: str,
    *,
    flow_run_id: str | None = FLOW_RUN,
    task_run_id: str | None = None,
    at: datetime | None = None,
    level: int = logging.INFO,
) -> LogEntry:
    return LogEntry(
        timestamp=at or _NOW,
        level=level,
        level_name=logging.getLevelName(level),
        logger="stratoflow.task_runs" if task_run_id else "stratoflow.flow_runs",
        message=message,
        flow_run_id=flow_run_id,
        task_run_id=task_run_id,
        flow_run_name="brave-otter" if flow_run_id else None,
        task_run_name=f"extract-{task_run_id}" if task_run_id else None,
    )


def lines(count: int, *, start: int = 0, **kwargs: Any) -> list[LogEntry]:
    return [
        entry(f"line {i}", at=_NOW + timedelta(milliseconds=i), **kwargs)
        for i in range(start, start + count)
    ]


def raw_events(client: Any, stream: str) -> list[dict[str, Any]]:
    return client.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True)[
        "events"
    ]


def test_lines_reach_the_flow_runs_stream_as_powertools_json_and_read_back_equal(
    make_shipper: Callable[..., CloudWatchLogShipper], client: Any
) -> None:
    shipper = make_shipper()
    written = [
        entry("flow starts", at=_NOW + timedelta(milliseconds=123)),
        entry(
            'task says hé "quoted"\nsecond line',
            task_run_id="tr-1",
            level=logging.WARNING,
            at=_NOW + timedelta(milliseconds=456),
        ),
    ]

    shipper.write(written)
    shipper.flush()

    events = raw_events(client, "flow-run/fr-1")
    base = int(_NOW.timestamp()) * 1000
    assert [e["timestamp"] for e in events] == [base + 123, base + 456]
    first, second = (json.loads(e["message"]) for e in events)
    assert first == {
        "level": "INFO",
        "location": "stratoflow.flow_runs",
        "message": "flow starts",
        "timestamp": (_NOW + timedelta(milliseconds=123)).isoformat(timespec="milliseconds"),
        "service": "stratoflow",
        "flow_run_id": "fr-1",
        "flow_run_name": "brave-otter",
    }
    assert first["timestamp"].endswith(".123+00:00")
    assert list(first)[:5] == ["level", "location", "message", "timestamp", "service"]
    assert second["level"] == "WARNING"
    assert second["task_run_id"] == "tr-1"
    assert second["task_run_name"] == "extract-tr-1"
    assert "\n" not in events[1]["message"]  # one JSON object per line

    assert shipper.read(FLOW_RUN) == written
    assert shipper.read(FLOW_RUN, "tr-1") == [written[1]]
    assert shipper.read(FLOW_RUN, start_time=_NOW + timedelta(milliseconds=200)) == [written[1]]


def test_events_are_sent_in_timestamp_order_even_when_written_out_of_order(
    make_shipper: Callable[..., CloudWatchLogShipper],
    client: Any,
    put_calls: list[list[dict[str, Any]]],
) -> None:
    shipper = make_shipper()
    third, first, second = (
        entry(name, at=_NOW + timedelta(seconds=offset))
        for name, offset in (("third", 3), ("first", 1), ("second", 2))
    )
    shipper.write([third, first])
    shipper.write([second])
    shipper.flush()

    assert len(put_calls) == 1
    stamps = [event["timestamp"] for event in put_calls[0]]
    assert stamps == sorted(stamps)
    assert [e.message for e in shipper.read(FLOW_RUN)] == ["first", "second", "third"]


def test_one_stream_per_flow_run(
    make_shipper: Callable[..., CloudWatchLogShipper], client: Any
) -> None:
    shipper = make_shipper()
    shipper.write(
        [
            entry("a1", flow_run_id="fr-a"),
            entry("b1", flow_run_id="fr-b", task_run_id="tr-b"),
            entry("a2", flow_run_id="fr-a", task_run_id="tr-a"),
            entry("lonely", flow_run_id=None, task_run_id="tr-x"),
        ]
    )
    shipper.flush()

    streams = client.describe_log_streams(logGroupName=LOG_GROUP)["logStreams"]
    assert sorted(s["logStreamName"] for s in streams) == [
        "flow-run/fr-a",
        "flow-run/fr-b",
        "task-run/tr-x",
    ]
    assert log_stream_name("fr-a") == "flow-run/fr-a"
    assert [e.message for e in shipper.read("fr-a")] == ["a1", "a2"]
    assert [e.message for e in shipper.read("fr-b")] == ["b1"]
    assert [e.message for e in shipper.read(None, "tr-x")] == ["lonely"]


def _call_bytes(events: list[dict[str, Any]]) -> int:
    return sum(len(e["message"].encode()) + EVENT_OVERHEAD_BYTES for e in events)


def test_batches_hold_at_most_10000_events() -> None:
    # A real line is longer than 100 bytes, so the byte limit binds first: tiny events here.
    events = [_Event(seq=i, stream="s", timestamp=i, message="", size=1) for i in range(20_001)]
    assert [len(batch) for batch in _batches(events)] == [MAX_BATCH_EVENTS, MAX_BATCH_EVENTS, 1]


def test_more_events_than_a_call_holds_are_split_into_several_calls(
    make_shipper: Callable[..., CloudWatchLogShipper],
    put_calls: list[list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cloudwatch_logs, "MAX_BATCH_EVENTS", 100)
    shipper = make_shipper()
    written = lines(201)
    shipper.write(written)
    shipper.flush()

    assert [len(call) for call in put_calls] == [100, 100, 1]
    assert [e.message for e in shipper.read(FLOW_RUN)] == [e.message for e in written]


def test_many_lines_are_split_by_bytes_and_read_back_across_pages(
    make_shipper: Callable[..., CloudWatchLogShipper],
    put_calls: list[list[dict[str, Any]]],
) -> None:
    shipper = make_shipper(max_buffer_lines=2 * MAX_BATCH_EVENTS)
    written = lines(MAX_BATCH_EVENTS + 1)
    shipper.write(written)
    shipper.flush()

    assert len(put_calls) > 1
    assert all(len(call) <= MAX_BATCH_EVENTS for call in put_calls)
    assert all(_call_bytes(call) <= MAX_BATCH_BYTES for call in put_calls)
    read = shipper.read(FLOW_RUN)  # more than one GetLogEvents page
    assert [e.message for e in read] == [e.message for e in written]


def test_more_than_a_megabyte_is_split_into_several_calls(
    make_shipper: Callable[..., CloudWatchLogShipper],
    put_calls: list[list[dict[str, Any]]],
) -> None:
    shipper = make_shipper()
    big = [entry(f"{i}" + "x" * 200_000, at=_NOW + timedelta(seconds=i)) for i in range(6)]
    shipper.write(big)
    shipper.flush()

    assert len(put_calls) == 2
    assert all(_call_bytes(call) <= MAX_BATCH_BYTES for call in put_calls)
    assert [e.message for e in shipper.read(FLOW_RUN)] == [e.message for e in big]


def test_a_call_never_spans_more_than_24_hours(
    make_shipper: Callable[..., CloudWatchLogShipper],
    put_calls: list[list[dict[str, Any]]],
) -> None:
    shipper = make_shipper()
    shipper.write([entry("old", at=_NOW - timedelta(hours=30)), entry("new")])
    shipper.flush()

    assert [[json.loads(e["message"])["message"] for e in call] for call in put_calls] == [
        ["old"],
        ["new"],
    ]


@pytest.mark.parametrize("char", ["x", "é", '"'], ids=["ascii", "multibyte", "escaped"])
def test_an_overlong_message_is_truncated_with_a_marker(
    make_shipper: Callable[..., CloudWatchLogShipper], client: Any, char: str
) -> None:
    shipper = make_shipper()
    shipper.write([entry(char * 300_000), entry("after")])
    shipper.flush()

    events = raw_events(client, "flow-run/fr-1")
    assert len(events[0]["message"].encode()) <= MAX_MESSAGE_BYTES
    record = json.loads(events[0]["message"])  # still one valid JSON line
    assert record["message"].endswith(TRUNCATION_MARKER)
    assert record["message"].startswith(char * 1000)
    assert len(events[0]["message"].encode()) > MAX_MESSAGE_BYTES - 100  # kept what fits
    assert [e.message for e in shipper.read(FLOW_RUN)][1] == "after"


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="x"),
        ClientError({"Error": {"Code": "ServiceUnavailableException"}}, "PutLogEvents"),
    ],
    ids=["unreachable", "service-error"],
)
def test_lines_written_while_cloudwatch_is_unavailable_are_delivered_later(
    make_shipper: Callable[..., CloudWatchLogShipper],
    client: Any,
    cloudwatch_warnings: Callable[[], list[str]],
    error: Exception,
) -> None:
    outage = Outage(client, error)
    shipper = make_shipper()
    shipper.write(lines(10))
    shipper.flush()  # creates the stream, ships the first lines

    outage.on = True
    shipper.write(lines(500, start=10))
    assert outage.attempts == 0  # no network on the write path: only a flush ships
    shipper.flush()
    shipper.write(lines(500, start=510))
    shipper.flush()

    assert outage.attempts == 2  # one call per flush: no hand-made retry loop
    assert shipper.buffered == 1000
    assert len(shipper.read(FLOW_RUN)) == 10
    assert sum("unavailable" in message for message in cloudwatch_warnings()) == 2

    outage.on = False
    shipper.write(lines(10, start=1010))
    shipper.flush()

    assert shipper.buffered == 0
    assert shipper.dropped == 0
    assert [e.message for e in shipper.read(FLOW_RUN)] == [f"line {i}" for i in range(1020)]


def test_a_missing_log_group_keeps_the_lines_until_it_exists(
    session: boto3.Session, make_shipper: Callable[..., CloudWatchLogShipper], client: Any
) -> None:
    client.delete_log_group(logGroupName=LOG_GROUP)
    shipper = make_shipper()
    shipper.write(lines(3))
    shipper.flush()
    assert shipper.buffered == 3

    client.create_log_group(logGroupName=LOG_GROUP)
    shipper.flush()
    assert [e.message for e in shipper.read(FLOW_RUN)] == ["line 0", "line 1", "line 2"]


def test_a_full_buffer_drops_the_oldest_lines_counts_and_warns(
    make_shipper: Callable[..., CloudWatchLogShipper],
    client: Any,
    cloudwatch_warnings: Callable[[], list[str]],
) -> None:
    outage = Outage(client, EndpointConnectionError(endpoint_url="x"))
    outage.on = True
    shipper = make_shipper(max_buffer_lines=100)

    for start in (0, 50, 100):
        shipper.write(lines(50, start=start))
    shipper.flush()
    assert shipper.dropped == 50
    drop_warnings = [m for m in cloudwatch_warnings() if "dropped" in m]
    assert len(drop_warnings) == 1  # once per flush, not once per line or write
    assert "dropped 50 " in drop_warnings[0]

    shipper.write(lines(30, start=150))
    shipper.flush()
    assert shipper.dropped == 80
    drop_warnings = [m for m in cloudwatch_warnings() if "dropped" in m]
    assert len(drop_warnings) == 2
    assert "dropped 80 " in drop_warnings[1]

    outage.on = False
    shipper.flush()
    assert [e.message for e in shipper.read(FLOW_RUN)] == [f"line {i}" for i in range(80, 180)]
    assert len([m for m in cloudwatch_warnings() if "dropped" in m]) == 2  # no new drops


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_the_background_thread_ships_without_an_explicit_flush(
    make_shipper: Callable[..., CloudWatchLogShipper],
) -> None:
    shipper = make_shipper(flush_seconds=0.05)
    assert shipper._thread is None  # started lazily
    shipper.write(lines(3))
    assert shipper._thread is not None and shipper._thread.daemon

    assert _wait_for(lambda: len(shipper.read(FLOW_RUN)) == 3)
    shipper.write(lines(2, start=3))
    assert _wait_for(lambda: len(shipper.read(FLOW_RUN)) == 5)

    shipper.close()
    assert not shipper._thread.is_alive()


def test_a_full_batch_is_shipped_before_the_period_ends(
    make_shipper: Callable[..., CloudWatchLogShipper],
    put_calls: list[list[dict[str, Any]]],
) -> None:
    shipper = make_shipper(flush_seconds=60.0)
    shipper.write(lines(10))
    time.sleep(0.1)
    assert put_calls == []  # not a full batch: waits for the period

    shipper.write([entry("x" * 200_000, at=_NOW + timedelta(seconds=1)) for _ in range(6)])
    assert _wait_for(lambda: sum(len(call) for call in put_calls) == 16)
    assert len(shipper.read(FLOW_RUN)) == 16


def test_close_ships_what_is_left_and_stops_the_thread(
    make_shipper: Callable[..., CloudWatchLogShipper],
) -> None:
    shipper = make_shipper()
    shipper.write(lines(4))
    thread = shipper._thread
    assert thread is not None

    shipper.close()
    assert not thread.is_alive()
    assert len(shipper.read(FLOW_RUN)) == 4


def test_the_stream_is_created_on_demand_when_missing(
    make_shipper: Callable[..., CloudWatchLogShipper], client: Any
) -> None:
    client.create_log_stream(logGroupName=LOG_GROUP, logStreamName="flow-run/fr-1")
    shipper = make_shipper()
    shipper.write(lines(1))
    shipper.flush()  # the stream already existed: fine
    assert [e.message for e in shipper.read(FLOW_RUN)] == ["line 0"]

    client.delete_log_stream(logGroupName=LOG_GROUP, logStreamName="flow-run/fr-1")
    shipper.write(lines(1, start=1))
    shipper.flush()  # PutLogEvents says the stream is gone: created again, resent
    assert [e.message for e in shipper.read(FLOW_RUN)] == ["line 1"]
    assert shipper.buffered == 0


def test_reading_a_missing_stream_gives_nothing(
    make_shipper: Callable[..., CloudWatchLogShipper],
) -> None:
    assert make_shipper().read("never-ran") == []


def test_lines_that_are_not_json_come_back_as_raw_text(
    make_shipper: Callable[..., CloudWatchLogShipper], client: Any
) -> None:
    client.create_log_stream(logGroupName=LOG_GROUP, logStreamName="flow-run/fr-1")
    millis = int(_NOW.timestamp()) * 1000
    client.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName="flow-run/fr-1",
        logEvents=[
            {"timestamp": millis, "message": "plain text from somewhere"},
            {"timestamp": millis + 1, "message": "[1, 2]"},
        ],
    )
    read = make_shipper().read(FLOW_RUN)
    assert [(e.message, e.flow_run_id, e.timestamp) for e in read] == [
        ("plain text from somewhere", FLOW_RUN, _NOW),
        ("[1, 2]", FLOW_RUN, _NOW + timedelta(milliseconds=1)),
    ]


def test_events_cloudwatch_rejects_are_counted_not_retried(
    make_shipper: Callable[..., CloudWatchLogShipper],
    cloudwatch_warnings: Callable[[], list[str]],
) -> None:
    shipper = make_shipper()
    shipper.write([entry("ancient", at=_NOW - timedelta(days=20)), entry("fresh")])
    shipper.flush()

    assert shipper.rejected == 1
    assert shipper.buffered == 0
    assert [e.message for e in shipper.read(FLOW_RUN)] == ["fresh"]
    assert any("rejected 1 " in m for m in cloudwatch_warnings())


def test_write_is_thread_safe(make_shipper: Callable[..., CloudWatchLogShipper]) -> None:
    shipper = make_shipper()

    def writer(n: int) -> None:
        for i in range(100):
            shipper.write([entry(f"{n}-{i}", at=_NOW + timedelta(milliseconds=i))])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shipper.flush()
    read = shipper.read(FLOW_RUN)
    assert sorted(e.message for e in read) == sorted(
        f"{n}-{i}" for n in range(8) for i in range(100)
    )
