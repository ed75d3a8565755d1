"""`stratoflow.wait_for_event(name, resource=..., timeout=...)` in a deployed flow.

The run suspends until an event named `name` (emitted with `emit_event`, or derived from
a state change) about a matching resource arrives, and returns it; after `timeout`
seconds without one it returns None. Only events that occur after the call count. See
`stratoflow.durable.event_waits` for how the event reaches the run, and
docs/durability.md.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from stratoflow.durable.event_waits import (
    ON_TIMEOUT,
    WAIT_EVENT,
    WAIT_RESOURCE,
    register_waiter,
    resource_matches,
)
from stratoflow.durable.signals import Suspend, can_suspend, flow_body_context
from stratoflow.events.label_names import RESOURCE_ID
from stratoflow.events.models import Event
from stratoflow.states import Suspended

DEFAULT_TIMEOUT = 3600


def wait_for_event(
    event: str,
    *,
    resource: str | dict[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Event | None:
    """Wait (without compute) for the next event named `event` whose resource matches
    `resource` (a resource id, or labels with `*` wildcards); None after `timeout`."""
    ctx = flow_body_context("wait_for_event")
    if not can_suspend(ctx):
        raise RuntimeError(
            "wait_for_event waits without compute for the events the installation's stream "
            "sees: it needs a deployment's run on a worker. Deploy the flow."
        )
    spec = _spec(resource)
    key = ctx.next_wait_key("event")
    run = ctx.flow_run
    record = ctx.services.backend.run_inputs.read(run.id, f"{key}-response")
    if record is not None:
        found = event_json(record.value)
        if found is None:  # timed out
            return None
        if found.event == event and resource_matches(spec, found):
            return found
        # Not what this wait asked for (the code changed, or a forged waiter): wait on.
    details: dict[str, Any] = {"pause_key": key, WAIT_EVENT: event, WAIT_RESOURCE: spec}
    expires = None
    if timeout is not None:
        expires = ctx.services.clock.now() + timedelta(seconds=timeout)
        details["pause_timeout"] = expires.isoformat()
        details[ON_TIMEOUT] = "resume"
    register_waiter(ctx.services.backend, event, run.id, key, expires)
    about = f" about {spec}" if spec else ""
    state = Suspended(f"Waiting for event {event!r}{about} ({key}).", **details)
    state.details["pause_reschedule"] = True
    raise Suspend(state, key, {"kind": "event", "event": event}, send_after=None)


def _spec(resource: str | dict[str, str] | None) -> dict[str, str]:
    if resource is None:
        return {}
    if isinstance(resource, str):
        return {RESOURCE_ID: resource}
    return {str(k): str(v) for k, v in resource.items()}


def event_json(value: str) -> Event | None:
    """The event a wait was resumed with (None: it timed out)."""
    loaded = json.loads(value)
    return None if loaded is None else Event.model_validate(loaded)
