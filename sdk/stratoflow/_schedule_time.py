"""Local wall-clock arithmetic for `stratoflow.schedules`.

Every schedule kind is computed the same way: a generator yields the matching *local wall-clock*
times (naive datetimes, in order), and `collect` maps each one to real UTC instants with explicit
daylight-saving rules, keeping those inside the requested window. Doing the time-zone step here,
rather than inside croniter or dateutil, keeps the DST behaviour identical for all kinds and
independent of the library versions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rruleset, rrulestr

DEFAULT_ANCHOR = datetime(2020, 1, 1)
"""Local wall-clock anchor for intervals and DTSTART for rrules that do not give one."""

_STAMP = "%Y%m%dT%H%M%S"
_UNTIL = re.compile(r"(UNTIL=)([0-9T]+Z?)", re.IGNORECASE)
_FIXED_PERIODS = {
    "WEEKLY": 7 * 86400,
    "DAILY": 86400,
    "HOURLY": 3600,
    "MINUTELY": 60,
    "SECONDLY": 1,
}


def shift(wall: datetime, delta: timedelta) -> datetime:
    """`wall + delta`, clamped to the datetime range instead of overflowing."""
    try:
        return wall + delta
    except OverflowError:
        return datetime.max if delta > timedelta(0) else datetime.min


def to_wall(instant: datetime, tz: ZoneInfo) -> datetime:
    """The naive local wall-clock time of an aware instant in `tz` (clamped at the range ends)."""
    try:
        return instant.astimezone(tz).replace(tzinfo=None)
    except OverflowError:
        return datetime.min if instant.year < 5000 else datetime.max


def offset_spread(tz: ZoneInfo, around: datetime) -> timedelta:
    """How far local wall-clock order can disagree with real-time order near `around`.

    That is the range of the zone's UTC offsets within 30 hours either side (plus an hour of
    slack); outside that distance real time dominates any offset change (offsets span < 27 h).
    """
    offsets: list[timedelta] = []
    for hours in range(-30, 31):
        try:
            offset = (around + timedelta(hours=hours)).astimezone(tz).utcoffset()
        except OverflowError:
            continue
        if offset is not None:
            offsets.append(offset)
    spread = max(offsets) - min(offsets) if offsets else timedelta(hours=26)
    return spread + timedelta(hours=1)


def to_instants(wall: datetime, tz: ZoneInfo, *, real_time: bool) -> list[datetime]:
    """The UTC instants at which local wall-clock time `wall` happens in `tz`.

    - A time that does not exist (skipped by spring-forward) is shifted forward by the length of
      the gap (02:30 -> 03:30), as RFC 5545 specifies, unless `real_time`, when it is dropped.
    - A time that happens twice (fall-back) means its first occurrence, unless `real_time`, when
      both occurrences are returned.
    `real_time` is for schedules defined for every hour of the day (cron `0 * * * *`): those run
    at every real occurrence of a matching wall-clock time, so no real hour is skipped or doubled.
    """
    try:
        first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
        second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
        exists = to_wall(first, tz) == wall
    except OverflowError:
        return []
    if not exists:
        return [] if real_time else [first]
    if real_time and second != first:
        return [first, second]
    return [first]


def collect(
    walls_from: Callable[[datetime], Iterator[datetime]],
    tz: ZoneInfo,
    start: datetime,
    end: datetime,
    limit: int,
    *,
    real_time: bool,
) -> list[datetime]:
    """Map the ordered wall-clock times `walls_from(lo)` yields (all >= lo) to UTC instants.

    Returns the instants t with start <= t < end, sorted, unique, at most `limit` (the earliest).
    The wall-clock range scanned is widened by the local offset spread so that the result is
    the same set whatever window it is computed over.
    """
    lo = shift(to_wall(start, tz), -offset_spread(tz, start))
    hi = shift(to_wall(end, tz), offset_spread(tz, end))
    found: set[datetime] = set()
    for wall in walls_from(lo):
        if wall >= hi:
            break
        for instant in to_instants(wall, tz, real_time=real_time):
            if start <= instant < end:
                found.add(instant)
                if len(found) == limit:
                    # Later wall-clock times can still map to earlier instants around a
                    # fall-back, but not beyond the local offset spread.
                    hi = min(hi, shift(wall, offset_spread(tz, instant)))
    return sorted(found)[:limit]


# --- RFC 5545 text -----------------------------------------------------------------------------


def _parse_stamp(text: str, tzid: str | None, tz: ZoneInfo) -> datetime:
    """A DATE or DATE-TIME value as naive local wall-clock time in `tz`."""
    utc = text.upper().endswith("Z")
    raw = text[:-1] if utc else text
    try:
        value = datetime.strptime(raw, _STAMP if "T" in raw.upper() else "%Y%m%d")
    except ValueError:
        raise ValueError(f"bad date-time {text!r} (expected e.g. 20260105T090000)") from None
    if utc:
        return to_wall(value.replace(tzinfo=UTC), tz)
    if tzid is not None:
        return to_wall(value.replace(tzinfo=ZoneInfo(tzid)), tz)
    return value


def _until_to_wall(match: re.Match[str], tz: ZoneInfo) -> str:
    return match.group(1) + _parse_stamp(match.group(2), None, tz).strftime(_STAMP)


def build_rruleset(text: str, tz: ZoneInfo, seek: datetime | None = None) -> rruleset:
    """Parse RFC 5545 text into a rule set over naive local wall-clock times in `tz`.

    DTSTART, RDATE, EXDATE and UNTIL values given in UTC (`Z`) or with a TZID are converted to
    `tz`; naive ones are already local. Without DTSTART the rule starts at 2020-01-01T00:00
    local. With `seek`, a rule that would otherwise replay years of occurrences may start later
    (see `_fast_forward`); occurrences from `seek` on are unchanged.
    """
    lines: list[str] = []
    dtstart: datetime | None = None
    for line in text.split():
        head, value = line.split(":", 1) if ":" in line else ("RRULE", line)
        name, *params = head.split(";")
        name = name.upper()
        tzid = next((p.split("=", 1)[1] for p in params if p.upper().startswith("TZID=")), None)
        if name in ("DTSTART", "RDATE", "EXDATE"):
            stamps = [_parse_stamp(v, tzid, tz) for v in value.split(",") if v]
            if name == "DTSTART":
                if dtstart is not None or len(stamps) != 1:
                    raise ValueError("give DTSTART once, with a single date-time")
                dtstart = stamps[0]
            else:
                lines.append(f"{name}:{','.join(s.strftime(_STAMP) for s in stamps)}")
        elif name in ("RRULE", "EXRULE"):
            interval = re.search(r"INTERVAL=(-?\d+)", value, re.IGNORECASE)
            if interval is not None and int(interval.group(1)) < 1:
                raise ValueError("INTERVAL must be at least 1")
            lines.append(f"{name}:{_UNTIL.sub(lambda m: _until_to_wall(m, tz), value)}")
        else:
            raise ValueError(f"unsupported line {name!r}; use DTSTART, RRULE, RDATE or EXDATE")
    if not lines:
        raise ValueError("no RRULE or RDATE line")
    dtstart = dtstart or DEFAULT_ANCHOR
    if seek is not None:
        dtstart = _fast_forward(lines, dtstart, seek)
    rules = rrulestr("\n".join(lines), dtstart=dtstart, forceset=True)
    assert isinstance(rules, rruleset)
    return rules


def _fast_forward(lines: list[str], dtstart: datetime, seek: datetime) -> datetime:
    """A later DTSTART with the same occurrences from `seek` on, or `dtstart` itself.

    dateutil iterates from DTSTART, so an hourly rule anchored in 2020 would replay tens of
    thousands of occurrences per call. For a single RRULE with a fixed-length period (weekly or
    shorter, in wall-clock time) and no COUNT, moving DTSTART forward by whole periods keeps the
    same lattice and the same defaults (weekday, hour, minute, second), so it changes nothing.
    """
    rules = [line.upper() for line in lines if line.upper().startswith(("RRULE:", "EXRULE:"))]
    if len(rules) != 1 or not rules[0].startswith("RRULE:") or "COUNT=" in rules[0]:
        return dtstart
    freq = re.search(r"FREQ=(\w+)", rules[0])
    interval = re.search(r"INTERVAL=(\d+)", rules[0])
    if freq is None or freq.group(1) not in _FIXED_PERIODS:
        return dtstart
    period = timedelta(seconds=_FIXED_PERIODS[freq.group(1)])
    period *= int(interval.group(1)) if interval else 1
    if seek - dtstart <= period:
        return dtstart
    return dtstart + ((seek - dtstart) // period - 1) * period


def rrule_walls(text: str, tz: ZoneInfo) -> Callable[[datetime], Iterator[datetime]]:
    """A `walls_from` for `collect`: the rule's occurrences at or after a wall-clock time."""

    def walls_from(lo: datetime) -> Iterator[datetime]:
        yield from build_rruleset(text, tz, seek=lo).xafter(lo, inc=True)

    return walls_from
