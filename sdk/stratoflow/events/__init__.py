"""Events: state changes of runs, deployments and work queues, and your own events."""

from stratoflow.events.models import Event, Resource

__all__ = ["Event", "Resource"]
