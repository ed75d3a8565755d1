"""`prefect.client.schemas.actions` under its Prefect path: what the client's
`create_*` and `update_*` methods take, for variables and global concurrency limits."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "GlobalConcurrencyLimitCreate",
    "GlobalConcurrencyLimitUpdate",
    "VariableCreate",
    "VariableUpdate",
]


class _Action(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VariableCreate(_Action):
    """Checked by `stratoflow.variables` when created (name, JSON value, size)."""

    name: str
    value: Any
    tags: list[str] | None = None


class VariableUpdate(_Action):
    """The fields given are changed; those left out keep their value."""

    name: str
    value: Any = None
    tags: list[str] | None = None


class GlobalConcurrencyLimitCreate(_Action):
    name: str
    limit: int = Field(ge=0)
    active: bool = True
    slot_decay_per_second: float = Field(default=0.0, ge=0)


class GlobalConcurrencyLimitUpdate(_Action):
    """The fields given are changed. A limit keeps its name; held slots are leases that
    their holders release (`active_slots` is not set from outside)."""

    limit: int | None = Field(default=None, ge=0)
    active: bool | None = None
    slot_decay_per_second: float | None = Field(default=None, ge=0)
