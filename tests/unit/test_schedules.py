from __future__ import annotations

import itertools
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from stratoflow.schedules import (
    CronSchedule,
    DeploymentSchedule,
    IntervalSchedule,
    RRuleSchedule,
    Schedule,
    parse_schedule,
    slots,
)

# TTLs, schedules or time windows: also run with the clock moved (tests/timeshift.py).
pytestmark = pytest.mark.date_sensitive

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")

# 2026 transitions: New York springs forward 2026-03-08 02:00 EST -> 03:00 EDT and falls back
# 2026-11-01 02:00 EDT -> 01:00 EST; London springs forward 2026-03-29 01:00 GMT -> 02:00 BST
# and falls back 2026-10-25 02:00 BST -> 01:00 GMT.
NY_SPRING = datetime(2026, 3, 8, tzinfo=NY)
NY_FALL = datetime(2026, 11, 1, tzinfo=NY)
LONDON_SPRING = datetime(2026, 3, 29, tzinfo=LONDON)
LONDON_FALL = datetime(2026, 10, 25, tzinfo=LONDON)


def local(times: list[datetime], tz: ZoneInfo) -> list[str]:
    return [t.astimezone(tz).strftime("%m-%d %H:%M%z") for t in times]


def day(schedule: Schedule, midnight: datetime) -> list[datetime]:
    """The slots during one local calendar day starting at `midnight` (local)."""
    tz = midnight.tzinfo
    assert isinstance(tz, ZoneInfo)
    following = (midnight.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=tz)
    return slots(schedule, midnight, following)


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("61 * * * *", "invalid cron expression '61 * * * *'"),
        ("0 9 * *", "expected 5 fields"),
        ("0 9 * * * *", "expected 5 fields"),
        ("H * * * *", "random (R) and hashed (H)"),
        ("R 9 * * *", "random (R) and hashed (H)"),
        ("@reboot", "unknown cron alias"),
        ("0 0 30 2 *", "never matches"),
        ("", "expected 5 fields"),
    ],
)
def test_bad_cron_says_why_and_gives_an_example(cron: str, message: str):
    with pytest.raises(ValidationError) as caught:
        CronSchedule(cron=cron)
    assert message in str(caught.value)
    if "never" not in message:
        assert "e.g." in str(caught.value) or "use one of" in str(caught.value)


def test_cron_accepts_names_aliases_and_normalises_spaces():
    assert CronSchedule(cron="  0 9  * * MON-FRI ").cron == "0 9 * * MON-FRI"
    assert CronSchedule(cron="@Daily").cron == "@daily"
    assert CronSchedule(cron="0 0 L * *").cron == "0 0 L * *"


@pytest.mark.parametrize("tz", ["Mars/Olympus", "utc", "", "/etc/passwd", "../x", "localtime"])
def test_bad_timezone(tz: str):
    for make in (
        lambda: CronSchedule(cron="0 9 * * *", timezone=tz),
        lambda: IntervalSchedule(interval=60, timezone=tz),
        lambda: RRuleSchedule(rrule="FREQ=DAILY", timezone=tz),
    ):
        with pytest.raises(ValidationError, match=r"unknown timezone .*'Europe/London'"):
            make()


@pytest.mark.parametrize("interval", [0, -5, timedelta(0), "-PT1H"])
def test_interval_must_be_positive(interval: object):
    with pytest.raises(ValidationError, match="interval must be positive"):
        IntervalSchedule.model_validate({"interval": interval})


def test_interval_accepts_seconds_and_iso_durations():
    assert IntervalSchedule.model_validate({"interval": 90}).interval == timedelta(seconds=90)
    assert IntervalSchedule.model_validate({"interval": 0.5}).interval == timedelta(seconds=0.5)
    assert IntervalSchedule.model_validate({"interval": "P1D"}).interval == timedelta(days=1)


@pytest.mark.parametrize(
    "rrule",
    ["FREQ=FOO", "", "FREQ=DAILY;INTERVAL=0", "X-FOO:bar", "DTSTART:2026 RRULE:FREQ=DAILY"],
)
def test_bad_rrule(rrule: str):
    with pytest.raises(ValidationError, match=r"invalid rrule .*FREQ=DAILY;BYHOUR=9"):
        RRuleSchedule(rrule=rrule)


def test_models_are_frozen_and_forbid_extra_fields():
    schedule = CronSchedule(cron="0 9 * * *")
    with pytest.raises(ValidationError):
        schedule.cron = "0 10 * * *"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="allowed keys: cron, timezone, day_or"):
        CronSchedule.model_validate({"cron": "0 9 * * *", "tz": "UTC"})


def test_parse_schedule_chooses_by_key():
    assert isinstance(parse_schedule({"cron": "0 9 * * *"}), CronSchedule)
    assert isinstance(parse_schedule({"interval": 60, "timezone": "UTC"}), IntervalSchedule)
    assert isinstance(parse_schedule({"rrule": "FREQ=DAILY"}), RRuleSchedule)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"timezone": "UTC"}, "exactly one of the keys 'cron', 'interval' or 'rrule'"),
        ({"cron": "0 9 * * *", "interval": 60}, "exactly one of the keys"),
        ({"cron": "0 9 * * *", "anchor_date": "2026-01-01"}, "allowed keys: cron, timezone"),
        ({"interval": 60, "day_or": True}, "allowed keys: interval, anchor_date, timezone"),
    ],
)
def test_parse_schedule_errors_name_the_allowed_keys(data: dict[str, object], message: str):
    with pytest.raises(ValueError, match=message):
        parse_schedule(data)


def test_deployment_schedule_flat_and_nested_forms():
    flat = DeploymentSchedule.model_validate(
        {
            "cron": "0 9 * * 1-5",
            "timezone": "Europe/London",
            "parameters": {"rows": 10},
            "slug": "weekday-morning",
        }
    )
    nested = DeploymentSchedule(
        schedule=CronSchedule(cron="0 9 * * 1-5", timezone="Europe/London"),
        parameters={"rows": 10},
        slug="weekday-morning",
    )
    assert flat == nested
    assert flat.active is True
    assert flat.key == "weekday-morning"
    from_dict = DeploymentSchedule.model_validate({"schedule": {"interval": 60}, "active": False})
    assert isinstance(from_dict.schedule, IntervalSchedule)
    assert from_dict.parameters == {}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cron": "0 9 * * *", "params": {}}, "allowed keys: cron, timezone, day_or, active"),
        ({"parameters": {}}, "exactly one of the keys"),
        ({"schedule": {"every": 5}}, "exactly one of the keys"),
        ({"cron": "0 9 * * *", "active": "sometimes"}, "active"),
    ],
)
def test_deployment_schedule_errors(data: dict[str, object], message: str):
    with pytest.raises(ValidationError, match=message):
        DeploymentSchedule.model_validate(data)


@pytest.mark.parametrize(
    "slug", ["Weekday", "week_day", "-morning", "morning-", "", "a" * 65, "café", "a b"]
)
def test_bad_slug(slug: str):
    with pytest.raises(ValidationError, match="lowercase letters, digits and hyphens"):
        DeploymentSchedule(schedule=CronSchedule(cron="0 9 * * *"), slug=slug)


def test_good_slugs():
    for slug in ("a", "weekday-morning", "every-5-minutes", "a" * 64):
        assert DeploymentSchedule(schedule=CronSchedule(cron="* * * * *"), slug=slug).key == slug


# --- keys --------------------------------------------------------------------------------------


def test_key_is_a_stable_short_hash_of_the_definition():
    schedule = DeploymentSchedule.model_validate(
        {"cron": "0 9 * * 1-5", "timezone": "Europe/London"}
    )
    # Pinned: the key must not change between releases, or redeploying would orphan schedules.
    assert schedule.key == "eeb99d5e33a2"
    code = (
        "from stratoflow.schedules import DeploymentSchedule as D;"
        "print(D.model_validate({'cron': '0 9 * * 1-5', 'timezone': 'Europe/London'}).key)"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123"},
    )
    assert other.stdout.strip() == schedule.key


def test_key_ignores_presentation_and_deployment_fields():
    base = DeploymentSchedule.model_validate({"cron": "0 9 * * 1-5"})
    same = [
        {"cron": " 0  9 * * 1-5", "timezone": "UTC", "day_or": True},
        {"cron": "0 9 * * 1-5", "parameters": {"rows": 1}, "active": False},
    ]
    for data in same:
        assert DeploymentSchedule.model_validate(data).key == base.key
    naive = IntervalSchedule(
        interval=86400, anchor_date=datetime(2026, 1, 5, 9), timezone="America/New_York"
    )
    aware = IntervalSchedule(
        interval=timedelta(days=1),
        anchor_date=datetime(2026, 1, 5, 14, tzinfo=UTC),
        timezone="America/New_York",
    )
    default = IntervalSchedule(interval=60)
    explicit = IntervalSchedule(interval=60, anchor_date=datetime(2020, 1, 1, tzinfo=UTC))
    assert DeploymentSchedule(schedule=naive).key == DeploymentSchedule(schedule=aware).key
    assert DeploymentSchedule(schedule=default).key == DeploymentSchedule(schedule=explicit).key


def test_different_definitions_have_different_keys():
    definitions: list[dict[str, object]] = [
        {"cron": "0 9 * * 1-5"},
        {"cron": "0 9 * * 1-5", "timezone": "Europe/London"},
        {"cron": "0 9 * * 1-5", "day_or": False},
        {"cron": "0 10 * * 1-5"},
        {"interval": 60},
        {"interval": 61},
        {"interval": 60, "anchor_date": "2026-01-01T00:00:30"},
        {"interval": 60, "timezone": "Europe/London"},
        {"rrule": "FREQ=DAILY;BYHOUR=9"},
        {"rrule": "FREQ=DAILY;BYHOUR=9", "timezone": "Europe/London"},
        {"rrule": "FREQ=DAILY;BYHOUR=10"},
    ]
    keys = [DeploymentSchedule.model_validate(d).key for d in definitions]
    assert len(set(keys)) == len(keys)
    assert all(len(k) == 12 for k in keys)


# --- slot windows ------------------------------------------------------------------------------


def test_window_start_is_inclusive_and_end_exclusive():
    schedule = CronSchedule(cron="0 * * * *")
    start = datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert slots(schedule, start, start + timedelta(hours=3)) == [
        start,
        start + timedelta(hours=1),
        start + timedelta(hours=2),
    ]
    assert slots(schedule, start + timedelta(microseconds=1), start + timedelta(hours=1)) == []
    assert slots(schedule, start, start) == []
    assert slots(schedule, start + timedelta(hours=1), start) == []


def test_slots_are_utc_whatever_zone_the_window_is_given_in():
    schedule = CronSchedule(cron="0 9 * * *", timezone="Europe/London")
    found = slots(schedule, datetime(2026, 7, 1, tzinfo=NY), datetime(2026, 7, 2, tzinfo=NY))
    assert found == [datetime(2026, 7, 1, 8, tzinfo=UTC)]
    assert found[0].tzinfo is UTC


def test_limit_keeps_the_earliest():
    schedule = CronSchedule(cron="*/5 * * * *")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    everything = slots(schedule, start, start + timedelta(days=1))
    assert len(everything) == 288
    assert slots(schedule, start, start + timedelta(days=1), limit=3) == everything[:3]
    assert slots(schedule, start, start + timedelta(days=365), limit=10) == everything[:10]
    assert len(slots(schedule, start, start + timedelta(days=365))) == 1000
    assert slots(schedule, start, start + timedelta(days=1), limit=0) == []
    with pytest.raises(ValueError, match="limit"):
        slots(schedule, start, start + timedelta(days=1), limit=-1)


def test_naive_window_is_rejected():
    schedule = CronSchedule(cron="0 * * * *")
    aware = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="start must be a timezone-aware datetime"):
        slots(schedule, datetime(2026, 1, 1), aware)
    with pytest.raises(ValueError, match="end must be a timezone-aware datetime"):
        slots(schedule, aware, datetime(2026, 1, 2))


def test_extreme_windows_do_not_overflow():
    lo = datetime.min.replace(tzinfo=UTC)
    hi = datetime.max.replace(tzinfo=UTC)
    for schedule in (
        CronSchedule(cron="0 9 * * *", timezone="America/New_York"),
        IntervalSchedule(interval=3600),
        IntervalSchedule(interval=86400, timezone="Pacific/Kiritimati"),
        RRuleSchedule(rrule="FREQ=DAILY", timezone="America/New_York"),
    ):
        assert len(slots(schedule, lo, hi, limit=5)) == 5
        assert len(slots(schedule, hi - timedelta(days=3), hi, limit=5)) >= 1


# --- cron and DST ------------------------------------------------------------------------------


@pytest.mark.parametrize("midnight", [NY_SPRING, LONDON_SPRING])
def test_hourly_cron_across_spring_forward(midnight: datetime):
    found = day(CronSchedule(cron="0 * * * *", timezone=str(midnight.tzinfo)), midnight)
    assert len(found) == 23  # the skipped hour is not invented
    assert len(set(found)) == 23
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(found))


@pytest.mark.parametrize(("midnight", "repeated"), [(NY_FALL, "01:00"), (LONDON_FALL, "01:00")])
def test_hourly_cron_across_fall_back_runs_every_real_hour(midnight: datetime, repeated: str):
    tz = midnight.tzinfo
    assert isinstance(tz, ZoneInfo)
    found = day(CronSchedule(cron="0 * * * *", timezone=str(tz)), midnight)
    assert len(found) == 25
    assert len(set(found)) == 25  # never the same instant twice
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(found))
    walls = Counter(t.astimezone(tz).strftime("%H:%M") for t in found)
    assert walls[repeated] == 2  # the repeated wall-clock hour runs at both real instants
    assert [w for w, n in walls.items() if n > 1] == [repeated]


def test_daily_cron_in_the_spring_forward_gap_runs_once_after_the_gap():
    schedule = CronSchedule(cron="30 2 * * *", timezone="America/New_York")
    found = slots(schedule, datetime(2026, 3, 7, tzinfo=NY), datetime(2026, 3, 10, tzinfo=NY))
    assert local(found, NY) == ["03-07 02:30-0500", "03-08 03:30-0400", "03-09 02:30-0400"]
    assert len(day(schedule, NY_SPRING)) == 1
    london = CronSchedule(cron="30 1 * * *", timezone="Europe/London")
    assert local(day(london, LONDON_SPRING), LONDON) == ["03-29 02:30+0100"]


@pytest.mark.parametrize(("midnight", "offset"), [(NY_FALL, "-0400"), (LONDON_FALL, "+0100")])
def test_daily_cron_at_a_repeated_time_runs_once_at_the_first_occurrence(
    midnight: datetime, offset: str
):
    tz = midnight.tzinfo
    assert isinstance(tz, ZoneInfo)
    found = day(CronSchedule(cron="30 1 * * *", timezone=str(tz)), midnight)
    assert local(found, tz) == [midnight.strftime("%m-%d") + " 01:30" + offset]


def test_fixed_hour_crons_in_the_repeated_hour_run_once_and_minute_crons_every_minute():
    every_quarter_at_1 = CronSchedule(cron="*/15 1 * * *", timezone="America/New_York")
    assert local(day(every_quarter_at_1, NY_FALL), NY) == [
        f"11-01 01:{m}-0400" for m in ("00", "15", "30", "45")
    ]
    every_quarter = CronSchedule(cron="*/15 * * * *", timezone="America/New_York")
    assert len(day(every_quarter, NY_FALL)) == 25 * 4
    assert len(day(every_quarter, NY_SPRING)) == 23 * 4


def test_every_other_hour_cron_is_not_doubled_in_berlin_fall_back():
    berlin = ZoneInfo("Europe/Berlin")  # falls back 03:00 CEST -> 02:00 CET; 02:00 repeats
    schedule = CronSchedule(cron="0 */2 * * *", timezone="Europe/Berlin")
    found = day(schedule, datetime(2026, 10, 25, tzinfo=berlin))
    assert Counter(t.astimezone(berlin).hour for t in found)[2] == 1
    assert len(found) == 12


def test_cron_day_or():
    # The 13th of the month or a Friday (standard cron) versus Friday the 13th.
    start, end = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
    either = slots(CronSchedule(cron="0 0 13 * 5"), start, end)
    both = slots(CronSchedule(cron="0 0 13 * 5", day_or=False), start, end)
    assert both == [datetime(2026, 2, 13, tzinfo=UTC), datetime(2026, 3, 13, tzinfo=UTC)]
    assert len(either) == 17 + 2  # 17 Fridays, plus Monday 13 April and Wednesday 13 May


# --- intervals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tz", [NY, LONDON])
def test_daily_interval_keeps_local_wall_clock_time(tz: ZoneInfo):
    schedule = IntervalSchedule(
        interval=timedelta(days=1), anchor_date=datetime(2026, 1, 5, 9), timezone=str(tz)
    )
    found = slots(schedule, datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert len(found) == 365 - 4 + 4  # Jan 1-4 come from negative multiples of the interval
    assert {t.astimezone(tz).strftime("%H:%M") for t in found} == {"09:00"}
    two_days = IntervalSchedule(
        interval=172800, anchor_date=datetime(2026, 3, 1, 9), timezone=str(tz)
    )
    found = slots(two_days, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))
    assert {t.astimezone(tz).strftime("%H:%M") for t in found} == {"09:00"}
    assert {
        (b.astimezone(tz).date() - a.astimezone(tz).date()).days
        for a, b in itertools.pairwise(found)
    } == {2}


@pytest.mark.parametrize("midnight", [NY_SPRING, NY_FALL, LONDON_SPRING, LONDON_FALL])
def test_hourly_interval_is_exact_elapsed_time(midnight: datetime):
    tz = midnight.tzinfo
    assert isinstance(tz, ZoneInfo)
    schedule = IntervalSchedule(interval=3600, timezone=str(tz))
    found = day(schedule, midnight)
    assert {(b - a).total_seconds() for a, b in itertools.pairwise(found)} == {3600.0}
    assert len(found) in (23, 25)


def test_interval_anchor_is_local_when_naive_and_slots_extend_before_it():
    schedule = IntervalSchedule(
        interval=timedelta(minutes=90),
        anchor_date=datetime(2026, 6, 1, 12),
        timezone="Europe/London",
    )
    found = slots(
        schedule, datetime(2026, 6, 1, 8, tzinfo=UTC), datetime(2026, 6, 1, 14, tzinfo=UTC)
    )
    assert local(found, LONDON) == [
        "06-01 09:00+0100",
        "06-01 10:30+0100",
        "06-01 12:00+0100",
        "06-01 13:30+0100",
    ]
    default = IntervalSchedule(interval=3600 * 7, timezone="Asia/Kolkata")
    assert default.anchor == datetime(2020, 1, 1, tzinfo=ZoneInfo("Asia/Kolkata"))
    assert all(
        (t - default.anchor) % timedelta(hours=7) == timedelta(0)
        for t in slots(default, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC))
    )


def test_daily_interval_anchored_in_the_gap_and_in_the_repeated_hour():
    gap = IntervalSchedule(
        interval=86400, anchor_date=datetime(2026, 1, 1, 2, 30), timezone="America/New_York"
    )
    assert local(day(gap, NY_SPRING), NY) == ["03-08 03:30-0400"]
    repeated = IntervalSchedule(
        interval=86400, anchor_date=datetime(2026, 1, 1, 1, 30), timezone="America/New_York"
    )
    assert local(day(repeated, NY_FALL), NY) == ["11-01 01:30-0400"]


# --- rrules ------------------------------------------------------------------------------------


@pytest.mark.parametrize("tz", [NY, LONDON])
def test_daily_rrule_keeps_local_wall_clock_time(tz: ZoneInfo):
    schedule = RRuleSchedule(rrule="FREQ=DAILY;BYHOUR=9", timezone=str(tz))
    found = slots(schedule, datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert len(found) == 365
    assert {t.astimezone(tz).strftime("%H:%M:%S") for t in found} == {"09:00:00"}


def test_rrule_dtstart_until_exdate_and_count():
    text = (
        "DTSTART:20260302T090000\n"
        "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20260325T000000\n"
        "EXDATE;TZID=Europe/London:20260311T130000"
    )
    schedule = RRuleSchedule(rrule=text, timezone="America/New_York")
    found = slots(schedule, datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert local(found, NY) == [
        "03-02 09:00-0500",
        "03-04 09:00-0500",
        "03-09 09:00-0400",
        "03-16 09:00-0400",
        "03-18 09:00-0400",
        "03-23 09:00-0400",
    ]
    utc_start = RRuleSchedule(
        rrule="DTSTART:20260105T140000Z RRULE:FREQ=DAILY;COUNT=3", timezone="America/New_York"
    )
    assert local(
        slots(utc_start, datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)), NY
    ) == [
        "01-05 09:00-0500",
        "01-06 09:00-0500",
        "01-07 09:00-0500",
    ]


def test_rrule_follows_rfc5545_in_the_gap_and_the_repeated_hour():
    gap = RRuleSchedule(rrule="FREQ=DAILY;BYHOUR=2;BYMINUTE=30", timezone="America/New_York")
    assert local(day(gap, NY_SPRING), NY) == ["03-08 03:30-0400"]
    repeated = RRuleSchedule(rrule="FREQ=DAILY;BYHOUR=1;BYMINUTE=30", timezone="America/New_York")
    assert local(day(repeated, NY_FALL), NY) == ["11-01 01:30-0400"]


def test_frequent_rrules_far_from_dtstart_are_fast_and_exact():
    every_7_minutes = RRuleSchedule(rrule="FREQ=MINUTELY;INTERVAL=7")
    start = datetime(2031, 6, 1, 12, 3, tzinfo=UTC)
    found = slots(every_7_minutes, start, start + timedelta(hours=2))
    anchor = datetime(2020, 1, 1, tzinfo=UTC)
    assert found and all((t - anchor) % timedelta(minutes=7) == timedelta(0) for t in found)
    assert len(found) in (17, 18)
    every_3_weeks = RRuleSchedule(
        rrule="DTSTART:20200107T080000 RRULE:FREQ=WEEKLY;INTERVAL=3;BYDAY=TU,FR"
    )
    found = slots(every_3_weeks, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    first_tuesday = datetime(2020, 1, 7, 8, tzinfo=UTC)
    for t in found:
        weeks = (t - first_tuesday).days // 7
        assert weeks % 3 == 0
        assert t.strftime("%a %H:%M") in ("Tue 08:00", "Fri 08:00")


# --- properties --------------------------------------------------------------------------------

ZONES = ["UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata"]
CRONS = [
    "0 * * * *",
    "30 1 * * *",
    "30 2 * * *",
    "*/20 * * * *",
    "15 2,3 * * 0",
    "0 9 * * 1-5",
    "*/10 1 * * *",
]
TRANSITIONS = [NY_SPRING, NY_FALL, LONDON_SPRING, LONDON_FALL, datetime(2026, 4, 5, tzinfo=UTC)]


@st.composite
def schedules(draw: st.DrawFn, kinds: tuple[str, ...] = ("cron", "interval", "rrule")) -> Schedule:
    kind = draw(st.sampled_from(kinds))
    tz = draw(st.sampled_from(ZONES))
    if kind == "cron":
        return CronSchedule(cron=draw(st.sampled_from(CRONS)), timezone=tz)
    if kind == "interval":
        seconds = draw(st.sampled_from([600, 3600, 5400, 86400, 172800]))
        anchor = datetime(2026, 1, 1) + timedelta(minutes=draw(st.integers(0, 2 * 1440)))
        return IntervalSchedule(interval=seconds, anchor_date=anchor, timezone=tz)
    rule = draw(
        st.sampled_from(
            ["FREQ=HOURLY", "FREQ=DAILY;BYHOUR=1,2,9;BYMINUTE=30", "FREQ=MINUTELY;INTERVAL=45"]
        )
    )
    return RRuleSchedule(rrule=rule, timezone=tz)


@st.composite
def windows(draw: st.DrawFn) -> tuple[datetime, datetime, datetime]:
    base = draw(st.sampled_from(TRANSITIONS)).astimezone(UTC)
    a = base + timedelta(
        minutes=draw(st.integers(-2 * 1440, 2 * 1440)), seconds=draw(st.sampled_from([0, 0, 1, 59]))
    )
    b = a + timedelta(minutes=draw(st.integers(0, 1440)), seconds=draw(st.sampled_from([0, 1])))
    c = b + timedelta(minutes=draw(st.integers(0, 1440)))
    return a, b, c


@settings(max_examples=150, deadline=None)
@given(schedules(), windows())
def test_slots_are_strictly_increasing_utc_and_inside_the_window(
    schedule: Schedule, window: tuple[datetime, datetime, datetime]
):
    a, _, c = window
    found = slots(schedule, a, c)
    assert all(t.tzinfo is UTC for t in found)
    assert all(a <= t < c for t in found)
    assert all(x < y for x, y in itertools.pairwise(found))


@settings(max_examples=150, deadline=None)
@given(schedules(("cron",)), windows())
def test_cron_slots_over_adjacent_windows_neither_skip_nor_double(
    schedule: Schedule, window: tuple[datetime, datetime, datetime]
):
    a, b, c = window
    whole = slots(schedule, a, c, limit=10**6)
    left, right = slots(schedule, a, b, limit=10**6), slots(schedule, b, c, limit=10**6)
    assert whole == left + right


@settings(max_examples=80, deadline=None)
@given(schedules(("interval", "rrule")), windows())
def test_interval_and_rrule_slots_over_adjacent_windows_neither_skip_nor_double(
    schedule: Schedule, window: tuple[datetime, datetime, datetime]
):
    a, b, c = window
    assert slots(schedule, a, c, limit=10**6) == slots(schedule, a, b, limit=10**6) + slots(
        schedule, b, c, limit=10**6
    )


@settings(max_examples=80, deadline=None)
@given(schedules(), windows(), st.integers(1, 30))
def test_limit_is_a_prefix(
    schedule: Schedule, window: tuple[datetime, datetime, datetime], limit: int
):
    a, _, c = window
    assert slots(schedule, a, c, limit=limit) == slots(schedule, a, c, limit=10**6)[:limit]
