"""When a pause is over without being resumed."""

from __future__ import annotations

from datetime import datetime

from stratoflow.models import FlowRun


def pause_expired(run: FlowRun, now: datetime) -> bool:
    """Whether the run's pause has a timeout, and it has passed."""
    value = run.state.details.get("pause_timeout") if run.state is not None else None
    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value) <= now
    except ValueError:
        return False
