"""Run a command with the wall clock moved.

    python -m tests.timeshift +400d -- pytest ...     # 400 days ahead
    python -m tests.timeshift @2028-02-29T23:59:00Z -- pytest ...
    python -m tests.timeshift --matrix -- pytest -m date_sensitive

The whole process tree is shifted, the emulator subprocess included, so TTLs, schedules,
event windows and caches are all judged against the moved clock. A shift is an offset
from now, computed once: every process of the run (each starts later than the first)
sees the same clock. `--matrix` runs the command at each of `instants()`, two at a time,
and fails when any run fails; `make test` does that for the tests marked
`date_sensitive` (the Makefile's `dates` target).

Why not Debian's `faketime`: its libfaketime (0.9.10) makes Python's `time.sleep` fail
with EINVAL when the monotonic clock is left real (`FAKETIME_DONT_FAKE_MONOTONIC=1`),
and with the monotonic clock faked every timed `threading` wait hangs. The `libfaketime`
package on PyPI builds a libfaketime that handles both; it is preloaded here. Only the
wall clock (`time.time`, `datetime.now`) moves; the monotonic clock stays real, so
timeouts and sleeps behave.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import libfaketime
from dateutil import rrule

USAGE = "usage: python -m tests.timeshift (+400d | @<ISO instant> | --matrix) -- COMMAND [ARG ...]"
PARALLEL = 2


def instants(now: datetime) -> dict[str, datetime]:
    """The moments a date-sensitive test must also pass at, all found from `now`:
    more than a year ahead; a minute before the next leap day ends (the run crosses
    into 1 March); a minute before New York's clocks next spring forward (from the time
    zone database, whatever the rule is then)."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    leap_day = rrule.rrule(rrule.YEARLY, bymonth=2, bymonthday=29, dtstart=midnight).after(now)
    assert leap_day is not None
    minute = timedelta(minutes=1)
    return {
        "400 days ahead": now + timedelta(days=400),
        "the next leap day, crossing midnight": leap_day.replace(hour=23, minute=59),
        "New York springs forward": _next_spring_forward(now + timedelta(days=1)) - minute,
    }


def _next_spring_forward(after: datetime, zone: str = "America/New_York") -> datetime:
    """The first whole hour after `after` at which `zone`'s UTC offset grows."""
    tz = ZoneInfo(zone)

    def offset(moment: datetime) -> timedelta:
        found = moment.astimezone(tz).utcoffset()
        assert found is not None
        return found

    hour = after.replace(minute=0, second=0, microsecond=0)
    for _ in range(24 * 400):  # there is one every year
        following = hour + timedelta(hours=1)
        if offset(following) > offset(hour):
            return following
        hour = following
    raise ValueError(f"{zone} has no daylight saving time within 400 days of {after}")


def parse_instant(spec: str, now: datetime) -> datetime:
    """`+400d`, `-2h`, `+90m`, `+30s` from now, or `@<ISO instant>` (UTC if naive)."""
    if spec.startswith("@"):
        moment = datetime.fromisoformat(spec[1:])
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    if spec[:1] in "+-" and spec[-1:] in units and spec[1:-1].isdigit():
        return now + int(spec[:-1]) * timedelta(**{units[spec[-1]]: 1})
    raise SystemExit(f"timeshift: cannot read {spec!r}\n{USAGE}")


def shifted_environment(instant: datetime, now: datetime) -> dict[str, str]:
    """This process's environment with libfaketime preloaded, the clock at `instant`."""
    env = dict(os.environ)
    _, additions = libfaketime.get_reload_information()  # LD_PRELOAD, LD_LIBRARY_PATH, ...
    library = Path(additions["LD_LIBRARY_PATH"]) / "libfaketime.so.1"
    if not library.is_file():
        raise SystemExit(f"timeshift: no libfaketime at {library}: reinstall the dev extra")
    # Already shifted (a test of this module under `make dates`, say): `now` is the
    # moved clock, and libfaketime applies an offset to the real one.
    inherited = env.get("FAKETIME", "")
    if inherited and not re.fullmatch(r"[+-]\d+", inherited):
        raise SystemExit(f"timeshift: FAKETIME={inherited!r} is set already; unset it first")
    offset = int(inherited or 0) + round((instant - now).total_seconds())
    preload = [p for p in env.get("LD_PRELOAD", "").split(":") if p and p != str(library)]
    env.update(additions)
    env["LD_PRELOAD"] = ":".join([str(library), *preload])
    # An offset in seconds, not an absolute time: libfaketime would start every new
    # process (the emulator, a worker) at an absolute time, behind the first one.
    env["FAKETIME"] = f"{offset:+d}"
    env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
    # The offset is read once per process, not again at every clock call (slow).
    env.pop("FAKETIME_NO_CACHE", None)
    return env


def _run(label: str, instant: datetime, now: datetime, command: Sequence[str]) -> int:
    done = subprocess.run(
        command,
        env=shifted_environment(instant, now),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    lines = done.stdout.rstrip().splitlines()
    shown = lines if done.returncode else lines[-1:]
    heading = f"timeshift: {label} ({instant:%Y-%m-%d %H:%M:%S} UTC): exit {done.returncode}"
    print("\n".join([heading, *shown]), flush=True)  # one write: the runs end concurrently
    return done.returncode


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] != "--":
        raise SystemExit(USAGE)
    spec, command = argv[0], argv[2:]
    now = datetime.now(UTC)
    if spec != "--matrix":
        instant = parse_instant(spec, now)
        print(f"timeshift: the clock at {instant:%Y-%m-%d %H:%M:%S} UTC", flush=True)
        os.execvpe(command[0], command, shifted_environment(instant, now))
    runs = instants(now)
    with ThreadPoolExecutor(PARALLEL) as pool:
        codes = list(pool.map(lambda item: _run(*item, now, command), runs.items()))
    if any(codes):
        raise SystemExit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
