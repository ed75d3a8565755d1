"""Events: what happened, to which resource, with which related resources (as Prefect 3).

A resource is a dict of labels with at least `stratoflow.resource.id`, such as
`{"stratoflow.resource.id": "stratoflow.flow-run.<id>", "stratoflow.resource.name": "..."}`.
Related resources also carry `stratoflow.resource.role` (flow, deployment, work-queue,
tag, ...). Labels spelled as in Prefect (`prefect.resource.id`, `prefect.resource.role`,
any `prefect.` label) are taken as their `stratoflow.` names.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stratoflow.events.label_names import RESOURCE_ID, RESOURCE_ROLE

PREFECT_PREFIX = "prefect."
OWN_PREFIX = "stratoflow."


def label_name(label: str) -> str:
    """A label as stratoflow spells it: `prefect.resource.id` is `stratoflow.resource.id`."""
    if label.startswith(PREFECT_PREFIX):
        return OWN_PREFIX + label[len(PREFECT_PREFIX) :]
    return label


def own_label_names(labels: Mapping[str, Any]) -> dict[str, Any]:
    """`labels` with Prefect's label names renamed; a label given under both of its
    names with different values is a ValueError."""
    renamed: dict[str, Any] = {}
    for key, value in labels.items():
        name = label_name(key) if isinstance(key, str) else key
        if name in renamed and renamed[name] != value:
            raise ValueError(
                f"label {name!r} is given twice with different values (also as {key!r})"
            )
        renamed[name] = value
    return renamed


class Resource(BaseModel):
    """Labels of a resource; `id` is `stratoflow.resource.id`."""

    model_config = ConfigDict(frozen=True)

    labels: dict[str, str]

    @field_validator("labels", mode="before")
    @classmethod
    def _own_names(cls, value: Any) -> Any:
        return own_label_names(value) if isinstance(value, Mapping) else value

    @field_validator("labels")
    @classmethod
    def _has_id(cls, value: dict[str, str]) -> dict[str, str]:
        if not value.get(RESOURCE_ID):
            raise ValueError(f"a resource needs the label {RESOURCE_ID!r}")
        return value

    @property
    def id(self) -> str:
        return self.labels[RESOURCE_ID]

    @property
    def role(self) -> str | None:
        return self.labels.get(RESOURCE_ROLE)

    def get(self, label: str, default: str | None = None) -> str | None:
        return self.labels.get(label, default)

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return iter(self.labels)

    @classmethod
    def of(cls, labels: Mapping[str, str] | str, **extra: str) -> Resource:
        """From labels, or from just an id: `Resource.of("my.resource.1", role="tag")`."""
        base = {RESOURCE_ID: labels} if isinstance(labels, str) else dict(labels)
        for key, value in extra.items():
            base[f"stratoflow.resource.{key}"] = value
        return cls(labels=base)


class Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    occurred: datetime = Field(default_factory=lambda: datetime.now(UTC))
    event: str = Field(min_length=1, max_length=1024)
    resource: Resource
    related: tuple[Resource, ...] = ()
    payload: dict[str, Any] = Field(default_factory=dict)
    follows: str | None = None
    """The id of an event this one follows (e.g. the previous state change)."""

    @field_validator("occurred")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

    def related_by_role(self, role: str) -> list[Resource]:
        return [r for r in self.related if r.role == role]
