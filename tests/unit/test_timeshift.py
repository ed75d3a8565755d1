"""tests/timeshift.py: the instants the date-sensitive tests also run at, and a process
started with the clock moved really sees the moved clock (and can still sleep)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.timeshift import instants, parse_instant, shifted_environment

NEW_YORK = ZoneInfo("America/New_York")


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2400, 1, 1)))
def test_every_instant_is_ahead_and_is_what_it_says(naive: datetime) -> None:
    now = naive.replace(tzinfo=UTC)
    found = instants(now)
    assert all(moment > now for moment in found.values())

    assert found["400 days ahead"] == now + timedelta(days=400)

    leap = found["the next leap day, crossing midnight"]
    assert (leap.month, leap.day, leap.hour, leap.minute) == (2, 29, 23, 59)
    assert leap - now <= timedelta(days=366 * 8 + 1)  # 2100 is no leap year

    spring = found["New York springs forward"]
    before, after = (
        spring.astimezone(NEW_YORK),
        (spring + timedelta(minutes=2)).astimezone(NEW_YORK),
    )
    assert before.utcoffset() == timedelta(hours=-5)
    assert after.utcoffset() == timedelta(hours=-4)


def test_parse_instant_reads_offsets_and_iso_instants() -> None:
    now = datetime.now(UTC)
    assert parse_instant("+400d", now) == now + timedelta(days=400)
    assert parse_instant("-2h", now) == now - timedelta(hours=2)
    assert parse_instant("@2030-01-01T00:00:00", now) == datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(SystemExit, match="cannot read 'tomorrow'"):
        parse_instant("tomorrow", now)


def test_a_shifted_process_sees_the_moved_clock_and_still_sleeps() -> None:
    now = datetime.now(UTC)
    ahead = now + timedelta(days=400)
    script = (
        "import datetime, threading, time\n"
        "time.sleep(0.01)\n"
        "threading.Event().wait(0.01)\n"
        "print(datetime.datetime.now(datetime.UTC).isoformat())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=shifted_environment(ahead, now),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    seen = datetime.fromisoformat(done.stdout.strip())
    assert abs(seen - ahead) < timedelta(minutes=5)
