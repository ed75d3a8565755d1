"""Times for tests, built from today rather than from a calendar date.

A test that builds its times from a literal date passes on the day it is written and
fails once the product (a 7-day event TTL, a late-run window, a cache expiry) or the
emulator compares them with the wall clock. Build them from `anchor()` instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def anchor(hour: int = 10) -> datetime:
    """Yesterday at `hour`:00 UTC.

    Always 14 to 38 hours in the past, so within every retention window the product
    has, and at a fixed time of day, so that a test spanning a few hours around it
    stays inside one UTC day whatever the hour it runs at.
    """
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=1) + timedelta(hours=hour)
