"""Events: state changes of runs, deployments and work queues, and your own events.

Stores are in `stratoflow.events.store` (imported on use: it needs boto3).
"""

from stratoflow.events.emit import InvalidEventError, emit_event, local_event_store
from stratoflow.events.models import Event, Resource

__all__ = ["Event", "InvalidEventError", "Resource", "emit_event", "local_event_store"]
