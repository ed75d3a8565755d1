"""Variables: named, mutable JSON values shared by flows and tasks (Prefect 3's API).

    from stratoflow.variables import Variable

    Variable.set("batch_size", 500, overwrite=True)
    size = Variable.get("batch_size", default=100)
    Variable.unset("batch_size")

Values are JSON (str, int, float, bool, None, list, dict; at most 5000 characters as
JSON) and names lowercase letters, numbers, dashes and underscores (at most 255), as in
Prefect. They are kept by the current backend: in memory for local runs, in the state
table with the AWS backend (docs/artifacts-and-variables.md). Variables are not secrets:
every worker can read and write them. Keep secrets in AWS Secrets Manager.

The sync forms return coroutines where an event loop runs outside a run, as Prefect's
do; `aget`, `aset` and `aunset` are always coroutines.
"""

from __future__ import annotations

import asyncio
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from stratoflow._async_dispatch import async_dispatch
from stratoflow.context import get_services
from stratoflow.records import (
    VARIABLE_NAME_MAX_LENGTH,
    InvalidVariableError,
    VariableAlreadyExists,
    VariableRecord,
    is_valid_variable_name,
    validate_tags,
    validate_variable_name,
    validate_variable_value,
)

T = TypeVar("T")

__all__ = [
    "InvalidVariableError",
    "Variable",
    "VariableAlreadyExists",
    "delete_variable",
    "list_variables",
    "read_variable",
    "write_variable",
]


class Variable(BaseModel, Generic[T]):
    """A named, mutable JSON value shared across flows and tasks.

    Arguments:
        name: lowercase letters, numbers, dashes and underscores.
        value: a JSON value.
        tags: optional strings associated with the variable.
    """

    name: str = Field(default=..., max_length=VARIABLE_NAME_MAX_LENGTH)
    value: Any = Field(default=...)
    tags: list[str] | None = Field(default=None)

    @classmethod
    def _set(cls, name: str, value: Any, tags: list[str] | None, overwrite: bool) -> Variable[T]:
        record = write_variable(name, value, tags, overwrite=overwrite)
        return cls(name=record.name, value=record.value, tags=record.tags)

    @classmethod
    async def aset(
        cls, name: str, value: Any, tags: list[str] | None = None, overwrite: bool = False
    ) -> Variable[T]:
        """Set a variable; raises VariableAlreadyExists (a ValueError) when it exists
        and `overwrite` is False. Returns the variable as stored."""
        return await asyncio.to_thread(cls._set, name, value, tags, overwrite)

    @classmethod
    @async_dispatch(aset)
    def set(
        cls, name: str, value: Any, tags: list[str] | None = None, overwrite: bool = False
    ) -> Variable[T]:
        """Set a variable; raises VariableAlreadyExists (a ValueError) when it exists
        and `overwrite` is False. Returns the variable as stored."""
        return cls._set(name, value, tags, overwrite)

    @classmethod
    def _get(cls, name: str, default: Any) -> Any:
        if not is_valid_variable_name(name):
            return default  # no variable can have that name (Prefect: not found)
        record = get_services().backend.variables.read(name)
        return record.value if record is not None else default

    @classmethod
    async def aget(cls, name: str, default: Any = None) -> Any:
        """The variable's value, or `default` when there is no such variable."""
        return await asyncio.to_thread(cls._get, name, default)

    @classmethod
    @async_dispatch(aget)
    def get(cls, name: str, default: Any = None) -> Any:
        """The variable's value, or `default` when there is no such variable."""
        return cls._get(name, default)

    @classmethod
    def _unset(cls, name: str) -> bool:
        return delete_variable(name)

    @classmethod
    async def aunset(cls, name: str) -> bool:
        """Delete a variable: True if it existed, False if not."""
        return await asyncio.to_thread(cls._unset, name)

    @classmethod
    @async_dispatch(aunset)
    def unset(cls, name: str) -> bool:
        """Delete a variable: True if it existed, False if not."""
        return cls._unset(name)


def read_variable(name: str) -> VariableRecord | None:
    """The stored variable with its times (None when there is none); checks the name."""
    validate_variable_name(name)
    return get_services().backend.variables.read(name)


def list_variables(limit: int | None = None) -> list[VariableRecord]:
    """Variables by name."""
    return get_services().backend.variables.list_variables(limit=limit)


def write_variable(
    name: str, value: Any, tags: list[str] | None = None, *, overwrite: bool = False
) -> VariableRecord:
    """`Variable.set` returning the stored variable with its times, synchronous
    wherever it is called. Raises VariableAlreadyExists unless `overwrite`."""
    validate_variable_name(name)
    checked = validate_variable_value(value, name)
    services = get_services()
    return services.backend.variables.write(
        name, checked, validate_tags(tags), now=services.clock.now(), overwrite=overwrite
    )


def delete_variable(name: str) -> bool:
    """`Variable.unset`, synchronous wherever it is called: whether it existed."""
    if not is_valid_variable_name(name):
        return False  # no variable can have that name
    return get_services().backend.variables.delete(name)
