"""Events: state changes of runs, deployments and work queues, and your own events.

Stores are in `stratoflow.events.store` (imported on use: it needs boto3). The names here
are loaded on first use (PEP 562): a module that needs only label names or patterns does
not load the event models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stratoflow.events.emit import InvalidEventError, emit_event, local_event_store
    from stratoflow.events.models import Event, Resource

_MODULE_OF = {
    "InvalidEventError": "stratoflow.events.emit",
    "emit_event": "stratoflow.events.emit",
    "local_event_store": "stratoflow.events.emit",
    "Event": "stratoflow.events.models",
    "Resource": "stratoflow.events.models",
}

__all__ = ["Event", "InvalidEventError", "Resource", "emit_event", "local_event_store"]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})
