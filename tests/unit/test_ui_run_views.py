"""What a flow run's page computes (stratoflow.ui.run_views): the log tail's cursor, the
Gantt chart's bars, the state timeline, and results described without being loaded."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import pytest

from stratoflow.models import FlowRun, LogEntry, TaskRun
from stratoflow.results import ResultRecord
from stratoflow.states import Completed, Pending, Running
from stratoflow.ui.run_views import (
    LogCursor,
    advance,
    after_cursor,
    describe_result,
    gantt,
    level_number,
    timeline,
)
from tests._time import anchor

T0 = anchor()


def line(message: str, ms: int) -> LogEntry:
    return LogEntry(
        timestamp=T0 + timedelta(milliseconds=ms),
        level=20,
        level_name="INFO",
        logger="stratoflow.flow_runs",
        message=message,
    )


def test_a_cursor_reads_back_what_it_wrote_and_refuses_garbage() -> None:
    cursor = LogCursor(1700000000123, 2)
    assert LogCursor.parse(cursor.as_text()) == cursor
    assert cursor.since == datetime.fromtimestamp(1700000000.123, tz=UTC)
    for text in (None, "", "abc", "1.x", "-1.0", "1", "9" * 20 + ".0"):
        assert LogCursor.parse(text) is None


def test_the_tail_skips_lines_shown_in_the_same_millisecond() -> None:
    first = [line("a", 0), line("b", 5), line("c", 5)]
    cursor = advance(None, first)
    assert cursor is not None and cursor.seen_at_timestamp == 2
    # CloudWatch reads from the cursor's millisecond on: b and c come again, then d.
    again = [line("b", 5), line("c", 5), line("d", 5), line("e", 9)]
    fresh = after_cursor(again, cursor)
    assert [entry.message for entry in fresh] == ["d", "e"]
    following = advance(cursor, fresh)
    assert following == LogCursor(cursor.timestamp_ms + 4, 1)
    assert after_cursor([line("e", 9)], following) == []
    assert advance(following, []) == following
    # A cursor on a millisecond that gets another line keeps counting.
    same = advance(cursor, [line("d", 5)])
    assert same == LogCursor(cursor.timestamp_ms, 3)


def test_level_names() -> None:
    assert level_number("warning") == 30
    assert level_number(None) == level_number("nonsense") == 10


def task(name: str, start: float | None, end: float | None, **fields: object) -> TaskRun:
    return TaskRun(
        id=f"id-{name}",
        name=name,
        task_key=name,
        dynamic_key="0",
        task_name=name,
        start_time=T0 + timedelta(seconds=start) if start is not None else None,
        end_time=T0 + timedelta(seconds=end) if end is not None else None,
        **fields,  # type: ignore[arg-type]
    )


def test_gantt_bars_start_at_the_run_and_carry_their_upstream() -> None:
    run = FlowRun(id="r", name="r", flow_name="f", start_time=T0)
    tasks = [
        task("extract", 1, 3, state=Completed()),
        task("load", 3, None, state=Running(), task_inputs={"rows": ["id-extract"]}),
        task("later", None, None, state=Pending()),
        task("ghost-child", 2, 2.5, state=Completed(), task_inputs={"x": ["id-elsewhere"]}),
    ]
    data = gantt(run, tasks, now=T0 + timedelta(seconds=10))
    bars = {bar["name"]: bar for bar in data["bars"]}
    assert set(bars) == {"extract", "load", "ghost-child"}  # not started: no bar
    assert (bars["extract"]["start"], bars["extract"]["end"]) == (1000, 3000)
    assert bars["load"]["end"] == 10000  # running: up to now
    assert bars["load"]["upstream"] == [{"id": "id-extract", "name": "extract"}]
    assert bars["ghost-child"]["upstream"] == [{"id": "id-elsewhere", "name": "id-elsewhere"}]
    assert bars["load"]["state_type"] == "RUNNING"


def test_the_timeline_says_how_long_each_state_lasted() -> None:
    pending, running, done = Pending(), Running(), Completed()
    pending.timestamp, running.timestamp, done.timestamp = (
        T0,
        T0 + timedelta(seconds=2),
        T0 + timedelta(seconds=7),
    )
    run = FlowRun(id="r", name="r", flow_name="f", state=done, state_history=[pending, running])
    assert [(s.state.name, s.lasted) for s in timeline(run)] == [
        ("Pending", 2.0),
        ("Running", 5.0),
        ("Completed", None),
    ]


class Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (pytest.fail, ("the UI loaded a pickle",))


def test_a_pickled_result_is_described_never_loaded() -> None:
    record = ResultRecord(
        store=None,
        key="results/r/flow",
        serializer="cloudpickle",
        inline=pickle.dumps(Boom()),
        signature="v1:pool-a:abc",
    )
    run = FlowRun(id="r", name="r", flow_name="f", state=Completed(), result_record=record)
    info = describe_result(run)
    assert info is not None
    assert (info.serializer, info.location, info.json_type) == ("cloudpickle", "inline", None)
    assert info.size == len(record.inline or b"")


def test_a_json_result_names_its_type_and_a_refused_one_says_why() -> None:
    record = ResultRecord(store=None, key="k", serializer="json", inline=b'{"a": 1}')
    run = FlowRun(id="r", name="r", flow_name="f", state=Completed(), result_record=record)
    info = describe_result(run)
    assert info is not None and info.json_type == "object" and info.size == 8
    refused = ResultRecord(store=None, key="", serializer="", refused="not ours")
    bad = describe_result(FlowRun(id="r", name="r", flow_name="f", result_record=refused))
    assert bad is not None and bad.problem == "not ours"
    assert describe_result(FlowRun(id="r", name="r", flow_name="f")) is None
