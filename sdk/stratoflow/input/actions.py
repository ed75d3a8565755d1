"""Reading and writing a flow run's inputs by key (Prefect's `prefect.input.actions`).

Values are JSON: whatever a reader gets back is parsed as JSON and, in `RunInput`,
validated by its model. They are kept by the backend (`Backend.run_inputs`): in the
run's partition of the state table with the AWS backend.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from stratoflow.context import FlowRunContext, get_services
from stratoflow.exceptions import MissingContextError
from stratoflow.models import RunInputRecord

if TYPE_CHECKING:
    from uuid import UUID

__all__ = [
    "acreate_flow_run_input",
    "acreate_flow_run_input_from_model",
    "adelete_flow_run_input",
    "afilter_flow_run_input",
    "aread_flow_run_input",
    "create_flow_run_input",
    "create_flow_run_input_from_model",
    "delete_flow_run_input",
    "filter_flow_run_input",
    "read_flow_run_input",
]


def current_flow_run_id(flow_run_id: UUID | str | None) -> str:
    """`flow_run_id` as text, or the current flow run's id."""
    if flow_run_id is not None:
        return str(flow_run_id)
    ctx = FlowRunContext.get()
    if ctx is None:
        raise MissingContextError(
            "No flow run id was given and there is no current flow run: pass flow_run_id=."
        )
    return ctx.flow_run.id


def _now_and_store() -> tuple[Any, Any]:
    services = get_services()
    return services.clock.now(), services.backend.run_inputs


def create_flow_run_input(
    key: str, value: Any, flow_run_id: UUID | str | None = None, sender: str | None = None
) -> None:
    """Store `value` (JSON-serializable) under `key`; a key is written once."""
    now, store = _now_and_store()
    store.create(
        RunInputRecord(
            flow_run_id=current_flow_run_id(flow_run_id),
            key=key,
            value=json.dumps(to_jsonable_python(value), separators=(",", ":")),
            sender=sender,
            created=now,
        )
    )


def create_flow_run_input_from_model(
    key: str,
    model_instance: BaseModel,
    flow_run_id: UUID | str | None = None,
    sender: str | None = None,
) -> None:
    """Store a pydantic model's JSON under `key`."""
    create_flow_run_input(key, model_instance.model_dump(mode="json"), flow_run_id, sender)


def read_flow_run_input(key: str, flow_run_id: UUID | str | None = None) -> Any:
    """The value stored under `key` (parsed JSON), or None."""
    record = get_services().backend.run_inputs.read(current_flow_run_id(flow_run_id), key)
    return None if record is None else json.loads(record.value)


def filter_flow_run_input(
    key_prefix: str,
    limit: int = 1,
    exclude_keys: set[str] | None = None,
    flow_run_id: UUID | str | None = None,
) -> list[RunInputRecord]:
    """The run's inputs whose key starts with `key_prefix`, oldest first."""
    exclude = exclude_keys or set()
    found = get_services().backend.run_inputs.list_inputs(
        current_flow_run_id(flow_run_id), prefix=key_prefix
    )
    return [r for r in found if r.key not in exclude][:limit]


def delete_flow_run_input(key: str, flow_run_id: UUID | str | None = None) -> None:
    get_services().backend.run_inputs.delete(current_flow_run_id(flow_run_id), key)


async def acreate_flow_run_input(
    key: str, value: Any, flow_run_id: UUID | str | None = None, sender: str | None = None
) -> None:
    await asyncio.to_thread(create_flow_run_input, key, value, flow_run_id, sender)


async def acreate_flow_run_input_from_model(
    key: str,
    model_instance: BaseModel,
    flow_run_id: UUID | str | None = None,
    sender: str | None = None,
) -> None:
    await asyncio.to_thread(
        create_flow_run_input_from_model, key, model_instance, flow_run_id, sender
    )


async def aread_flow_run_input(key: str, flow_run_id: UUID | str | None = None) -> Any:
    return await asyncio.to_thread(read_flow_run_input, key, flow_run_id)


async def afilter_flow_run_input(
    key_prefix: str,
    limit: int = 1,
    exclude_keys: set[str] | None = None,
    flow_run_id: UUID | str | None = None,
) -> list[RunInputRecord]:
    return await asyncio.to_thread(
        filter_flow_run_input, key_prefix, limit, exclude_keys, flow_run_id
    )


async def adelete_flow_run_input(key: str, flow_run_id: UUID | str | None = None) -> None:
    await asyncio.to_thread(delete_flow_run_input, key, flow_run_id)
