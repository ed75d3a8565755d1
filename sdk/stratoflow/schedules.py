"""Deployment schedules: cron, interval and RFC 5545 rrule, computed in a time zone.

`slots(schedule, start, end)` lists the times a schedule fires inside a window, as UTC instants.
The result is a pure function of the definition and the window, so a scheduler ticking over
adjacent windows `[a, b)`, `[b, c)` never skips or doubles a run. The daylight-saving rules
are stated in docs/schedules.md and implemented in `stratoflow._schedule_time.to_instants`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    field_validator,
    model_validator,
)

from stratoflow._schedule_time import (
    DEFAULT_ANCHOR,
    build_rruleset,
    collect,
    rrule_walls,
    shift,
    to_wall,
)

__all__ = [
    "CronSchedule",
    "DeploymentSchedule",
    "IntervalSchedule",
    "RRuleSchedule",
    "Schedule",
    "parse_schedule",
    "slots",
]

_CRON_ALIASES = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_DEPLOYMENT_KEYS = ("active", "parameters", "slug")


def _check_timezone(name: str) -> str:
    try:
        if name in ("localtime", "posixrules"):  # depend on the host, not on the definition
            raise ValueError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown timezone {name!r}: use an IANA time zone name such as "
            "'Europe/London', 'America/New_York' or 'UTC'"
        ) from None
    return name


TimezoneName = Annotated[str, AfterValidator(_check_timezone)]


class _ScheduleModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(str(k) for k in data if k not in cls.model_fields)
            if unknown:
                raise ValueError(
                    f"unknown key(s) {', '.join(map(repr, unknown))} in a {cls.__name__}; "
                    f"allowed keys: {', '.join(cls.model_fields)}"
                )
        return data

    def _definition(self) -> dict[str, Any]:
        raise NotImplementedError


class CronSchedule(_ScheduleModel):
    """Runs at the times a 5-field cron expression matches, in `timezone` wall-clock time."""

    cron: str
    timezone: TimezoneName = "UTC"
    day_or: bool = True
    """Standard cron: when both day-of-month and day-of-week are restricted, either may match.
    False: both must match."""

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        fields = value.split()
        example = "e.g. '0 9 * * 1-5' (09:00 on weekdays) or '@daily'"
        if len(fields) == 1 and fields[0].startswith("@"):
            if fields[0].lower() not in _CRON_ALIASES:
                aliases = ", ".join(sorted(_CRON_ALIASES))
                raise ValueError(f"unknown cron alias {value!r}: use one of {aliases}")
            return fields[0].lower()
        if len(fields) != 5:
            raise ValueError(
                f"invalid cron expression {value!r}: expected 5 fields "
                f"(minute hour day-of-month month day-of-week), got {len(fields)}; {example}"
            )
        if any(part[:1].upper() in ("H", "R") for f in fields for part in f.split(",")):
            raise ValueError(
                f"invalid cron expression {value!r}: random (R) and hashed (H) "
                f"values are not supported; {example}"
            )
        try:
            croniter(value)
        except CroniterError as exc:
            raise ValueError(f"invalid cron expression {value!r}: {exc}; {example}") from None
        return " ".join(fields)

    @model_validator(mode="after")
    def _ever_matches(self) -> CronSchedule:
        try:
            croniter(self.cron, DEFAULT_ANCHOR, day_or=self.day_or).get_next(datetime)
        except CroniterError:
            raise ValueError(f"cron expression {self.cron!r} never matches a date") from None
        return self

    @property
    def every_hour(self) -> bool:
        """Whether the hour field matches all 24 hours (`*`, `*/1`, `0-23`)."""
        hours = croniter.expand(self.cron)[0][1]
        return hours == ["*"] or set(hours) >= set(range(24))

    def _definition(self) -> dict[str, Any]:
        return {"cron": self.cron, "timezone": self.timezone, "day_or": self.day_or}

    def _walls(self, lo: datetime) -> Iterator[datetime]:
        # croniter only matches naive wall-clock times here; `collect` applies the DST rules.
        # Its own time-zone handling (croniter 7.0, aware start) runs '30 2 * * *' at 03:00 on
        # spring-forward day and '30 1 * * *' twice on fall-back day, against those rules.
        it = croniter(self.cron, shift(lo, -timedelta(minutes=1)), day_or=self.day_or)
        while True:
            try:
                yield it.get_next(datetime)
            except (CroniterError, OverflowError, ValueError):
                return


class IntervalSchedule(_ScheduleModel):
    """Runs at `anchor_date + k * interval` for every integer k.

    A naive `anchor_date` is local to `timezone`; the default is 2020-01-01T00:00 there.
    Intervals of whole days keep the anchor's local wall-clock time across DST; shorter ones
    are exact elapsed time.
    """

    interval: timedelta
    anchor_date: datetime | None = None
    timezone: TimezoneName = "UTC"

    @field_validator("interval")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError(
                f"interval must be positive, got {value.total_seconds():g} seconds; "
                "give seconds (3600) or an ISO 8601 duration ('PT1H', 'P1D')"
            )
        return value

    @property
    def anchor(self) -> datetime:
        """The effective anchor, as an aware datetime."""
        tz = ZoneInfo(self.timezone)
        anchor = self.anchor_date or DEFAULT_ANCHOR
        return anchor if anchor.utcoffset() is not None else anchor.replace(tzinfo=tz)

    @property
    def whole_days(self) -> bool:
        return self.interval % timedelta(days=1) == timedelta(0)

    def _definition(self) -> dict[str, Any]:
        return {
            "interval_us": self.interval // timedelta(microseconds=1),
            "anchor": self.anchor.astimezone(ZoneInfo(self.timezone)).isoformat(),
            "timezone": self.timezone,
        }

    def _walls(self, lo: datetime) -> Iterator[datetime]:
        anchor = to_wall(self.anchor, ZoneInfo(self.timezone))
        wall = anchor + ((lo - anchor) // self.interval) * self.interval
        while True:
            yield wall
            try:
                wall += self.interval
            except OverflowError:
                return

    def _elapsed(self, start: datetime, end: datetime, limit: int) -> list[datetime]:
        anchor = self.anchor.astimezone(UTC)  # UTC, so that arithmetic is elapsed time
        out: list[datetime] = []
        try:
            t = anchor - ((anchor - start) // self.interval) * self.interval  # first t >= start
            while t < end and len(out) < limit:
                out.append(t.astimezone(UTC))
                t += self.interval
        except OverflowError:
            pass
        return out


class RRuleSchedule(_ScheduleModel):
    """Runs at the occurrences of an RFC 5545 recurrence rule, computed in `timezone`.

    The text may hold DTSTART (naive = local to `timezone`), RRULE, RDATE and EXDATE lines;
    without DTSTART the rule starts at 2020-01-01T00:00 local.
    """

    rrule: str
    timezone: TimezoneName = "UTC"

    @field_validator("rrule")
    @classmethod
    def _valid_rrule(cls, value: str) -> str:
        try:
            build_rruleset(value, ZoneInfo("UTC"))
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise ValueError(
                f"invalid rrule {value!r}: {exc}; e.g. 'FREQ=DAILY;BYHOUR=9' or "
                "'DTSTART:20260105T090000 RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR'"
            ) from None
        return value

    def _definition(self) -> dict[str, Any]:
        return {"rrule": "\n".join(self.rrule.split()), "timezone": self.timezone}


Schedule = CronSchedule | IntervalSchedule | RRuleSchedule

_KINDS: dict[str, type[CronSchedule | IntervalSchedule | RRuleSchedule]] = {
    "cron": CronSchedule,
    "interval": IntervalSchedule,
    "rrule": RRuleSchedule,
}


def _kind(value: Any) -> str | None:
    if isinstance(value, Mapping):
        kinds = [k for k in _KINDS if k in value]
        return kinds[0] if len(kinds) == 1 else None
    return next((k for k, cls in _KINDS.items() if isinstance(value, cls)), None)


_KIND_ERROR = "a schedule needs exactly one of the keys 'cron', 'interval' or 'rrule'"
_ScheduleField = Annotated[
    Annotated[CronSchedule, Tag("cron")]
    | Annotated[IntervalSchedule, Tag("interval")]
    | Annotated[RRuleSchedule, Tag("rrule")],
    Discriminator(_kind, custom_error_type="schedule_kind", custom_error_message=_KIND_ERROR),
]
_SCHEDULE_ADAPTER: TypeAdapter[Schedule] = TypeAdapter(_ScheduleField)


def parse_schedule(data: Mapping[str, Any]) -> Schedule:
    """Build a schedule from a mapping, choosing the kind by its `cron`/`interval`/`rrule` key.

    Raises `pydantic.ValidationError` (a `ValueError`) with a message naming the allowed keys.
    """
    return _SCHEDULE_ADAPTER.validate_python(data)


def schedule_key(schedule: Schedule) -> str:
    """A short hash of the schedule definition, stable across processes and releases."""
    kind = next(k for k, cls in _KINDS.items() if isinstance(schedule, cls))
    canonical = json.dumps({"kind": kind, **schedule._definition()}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


class DeploymentSchedule(BaseModel):
    """A schedule attached to a deployment, with the parameters its runs get.

    Accepts the flat form used in `stratoflow.yaml` (`{cron: ..., timezone: ..., slug: ...}`)
    as well as `{schedule: {...}, active: ..., parameters: ..., slug: ...}`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schedule: _ScheduleField
    active: bool = True
    parameters: dict[str, Any] = Field(default_factory=dict)
    slug: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _flat_form(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or "schedule" in data:
            return data
        kind = _kind(data)
        if kind is None:
            raise ValueError(_KIND_ERROR)
        allowed = [*_KINDS[kind].model_fields, *_DEPLOYMENT_KEYS]
        unknown = sorted(str(k) for k in data if k not in allowed)
        if unknown:
            raise ValueError(
                f"unknown key(s) {', '.join(map(repr, unknown))} in a schedule with {kind!r}; "
                f"allowed keys: {', '.join(allowed)}"
            )
        own = {k: v for k, v in data.items() if k in _DEPLOYMENT_KEYS}
        return {**own, "schedule": {k: v for k, v in data.items() if k not in _DEPLOYMENT_KEYS}}

    @field_validator("slug")
    @classmethod
    def _valid_slug(cls, value: str | None) -> str | None:
        if value is not None and not _SLUG.match(value):
            raise ValueError(
                f"invalid slug {value!r}: use lowercase letters, digits and hyphens, "
                "not starting or ending with a hyphen, at most 64 characters "
                "(e.g. 'weekday-morning')"
            )
        return value

    @property
    def key(self) -> str:
        """The slug if given, else a stable short hash of the schedule definition."""
        return self.slug if self.slug is not None else schedule_key(self.schedule)


def slots(
    schedule: Schedule, start: datetime, end: datetime, *, limit: int = 1000
) -> list[datetime]:
    """The times `schedule` fires with `start <= t < end`: aware UTC datetimes, sorted, unique.

    At most `limit` (the earliest). `start` and `end` must be timezone-aware.
    """
    for name, value in (("start", start), ("end", end)):
        if value.utcoffset() is None:
            raise ValueError(
                f"{name} must be a timezone-aware datetime, e.g. "
                f"datetime(2026, 1, 1, tzinfo=UTC); got naive {value.isoformat()}"
            )
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if limit == 0 or start >= end:
        return []
    tz = ZoneInfo(schedule.timezone)
    if isinstance(schedule, CronSchedule):
        return collect(schedule._walls, tz, start, end, limit, real_time=schedule.every_hour)
    if isinstance(schedule, IntervalSchedule):
        if not schedule.whole_days:
            return schedule._elapsed(start, end, limit)
        return collect(schedule._walls, tz, start, end, limit, real_time=False)
    return collect(rrule_walls(schedule.rrule, tz), tz, start, end, limit, real_time=False)
