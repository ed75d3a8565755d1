"""`prefect.events.schemas.events` under its Prefect path: `Event`, `Resource`,
`RelatedResource` and `ResourceSpecification`.

Resources take labels spelled as in Prefect (`prefect.resource.id`, ...) as their
`stratoflow.` names (stratoflow.events.models).
"""

from __future__ import annotations

from typing import Any

from pydantic import RootModel

from stratoflow.events.models import Event, Resource

__all__ = ["Event", "RelatedResource", "Resource", "ResourceSpecification"]

RelatedResource = Resource
"""A related resource is a Resource with a `stratoflow.resource.role` label."""


class ResourceSpecification(RootModel[dict[str, str | list[str]]]):
    """Label -> pattern (or patterns) a trigger's `match` requires; `*` is a wildcard.
    Triggers take it as well as a plain dict."""

    def items(self) -> Any:
        return self.root.items()
