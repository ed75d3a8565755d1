"""The label names every resource has, apart from the event models: assets name their
resources with them without loading pydantic models of events (the task engine's cold
start, bench/cold_start.py)."""

from __future__ import annotations

RESOURCE_ID = "stratoflow.resource.id"
RESOURCE_NAME = "stratoflow.resource.name"
RESOURCE_ROLE = "stratoflow.resource.role"
