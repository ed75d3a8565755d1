"""Typed input for flow runs: what a paused run waits for, and messages between runs.

As Prefect's `prefect.input.run_input`: a `RunInput` is a pydantic model. A paused or
suspended run saves its model's JSON schema under `<key>-schema` and waits for a
`<key>-response`; `resume_flow_run(run_id, run_input={...})` validates and stores that
response (docs/durability.md). `send_input`/`receive_input` (and `RunInput.send_to` /
`receive`) pass messages to a running flow under `<prefix>-<uuid>` keys.

Inputs are untrusted JSON (anyone who may resume the run, or a worker of its pool, can
write them): they are only ever parsed as JSON and validated by the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypedDict, TypeVar, cast

import pydantic

from stratoflow.context import FlowRunContext
from stratoflow.exceptions import RunInputExists
from stratoflow.input.actions import (
    create_flow_run_input,
    create_flow_run_input_from_model,
    current_flow_run_id,
    filter_flow_run_input,
    read_flow_run_input,
)
from stratoflow.models import RunInputRecord

if TYPE_CHECKING:
    from stratoflow.states import State

T = TypeVar("T")
R = TypeVar("R", bound="RunInput")

__all__ = [
    "AutomaticRunInput",
    "GetInputHandler",
    "Keyset",
    "RunInput",
    "RunInputMetadata",
    "keyset_from_base_key",
    "keyset_from_paused_state",
    "receive_input",
    "run_input_subclass_from_type",
    "send_input",
]


class Keyset(TypedDict):
    """The input keys of one pause: its description, its response and its schema."""

    description: str
    response: str
    schema: str


def keyset_from_base_key(base_key: str) -> Keyset:
    return Keyset(
        description=f"{base_key}-description",
        response=f"{base_key}-response",
        schema=f"{base_key}-schema",
    )


def keyset_from_paused_state(state: State) -> Keyset:
    """The keyset of the input a Paused state waits for."""
    if not state.is_paused():
        raise RuntimeError(f"{state!r} is not a Paused state: it waits for no input.")
    key = state.details.get("pause_key")
    if not isinstance(key, str) or not key:
        raise RuntimeError(f"{state!r} has no pause key: it waits for no input.")
    return keyset_from_base_key(key)


class RunInputMetadata(pydantic.BaseModel):
    key: str
    sender: str | None = None
    receiver: str


def _sender() -> str | None:
    ctx = FlowRunContext.get()
    return f"stratoflow.flow-run.{ctx.flow_run.id}" if ctx is not None else None


class RunInput(pydantic.BaseModel):
    """Input a flow run waits for or receives: subclass it with the fields you need."""

    model_config = pydantic.ConfigDict(extra="forbid")
    description: ClassVar[str | None] = None
    _metadata: RunInputMetadata | None = pydantic.PrivateAttr(default=None)

    @property
    def metadata(self) -> RunInputMetadata:
        if self._metadata is None:
            raise AttributeError("This input was not received from a flow run: no metadata.")
        return self._metadata

    @classmethod
    def keyset_from_type(cls) -> Keyset:
        return keyset_from_base_key(cls.__name__.lower())

    @classmethod
    def save(cls, keyset: Keyset, flow_run_id: uuid.UUID | str | None = None) -> None:
        """Store this model's JSON schema (and description) for whoever answers."""
        run_id = current_flow_run_id(flow_run_id)
        _create_once(keyset["schema"], cls.model_json_schema(), run_id)
        if cls.description is not None:
            _create_once(keyset["description"], cls.description, run_id)

    @classmethod
    def load(cls, keyset: Keyset, flow_run_id: uuid.UUID | str | None = None) -> Self:
        """The response stored for `keyset`, validated (raises if there is none)."""
        run_id = current_flow_run_id(flow_run_id)
        value = read_flow_run_input(keyset["response"], flow_run_id=run_id)
        if value is None:
            raise LookupError(f"Flow run {run_id} has no input {keyset['response']!r} yet.")
        instance = cls.model_validate(value)
        instance._metadata = RunInputMetadata(key=keyset["response"], receiver=run_id)
        return instance

    @classmethod
    def load_from_flow_run_input(cls, flow_run_input: RunInputRecord) -> Self:
        instance = cls.model_validate_json(flow_run_input.value)
        instance._metadata = RunInputMetadata(
            key=flow_run_input.key,
            sender=flow_run_input.sender,
            receiver=flow_run_input.flow_run_id,
        )
        return instance

    @classmethod
    def with_initial_data(cls, description: str | None = None, **kwargs: Any) -> type[Self]:
        """A subclass whose fields default to `kwargs` (a form shows them filled in)."""
        fields: dict[str, Any] = {
            name: (cls.model_fields[name].annotation, value) for name, value in kwargs.items()
        }
        model = pydantic.create_model(cls.__name__, __base__=cls, **fields)
        if description is not None:
            model.description = description
        return model

    def respond(
        self,
        run_input: RunInput,
        sender: str | None = None,
        key_prefix: str | None = None,
    ) -> None:
        """Send `run_input` back to the run this input came from."""
        sender_of_this = self.metadata.sender
        if not sender_of_this or not sender_of_this.startswith("stratoflow.flow-run."):
            raise RuntimeError("This input has no flow run sender to respond to.")
        send_input(
            run_input,
            sender_of_this.removeprefix("stratoflow.flow-run."),
            sender=sender,
            key_prefix=key_prefix,
        )

    def send_to(
        self, flow_run_id: uuid.UUID | str, sender: str | None = None, key_prefix: str | None = None
    ) -> None:
        send_input(self, flow_run_id, sender=sender, key_prefix=key_prefix)

    @classmethod
    def receive(
        cls,
        timeout: float | None = 3600,
        poll_interval: float = 10,
        raise_timeout_error: bool = False,
        exclude_keys: set[str] | None = None,
        key_prefix: str | None = None,
        flow_run_id: uuid.UUID | str | None = None,
    ) -> GetInputHandler[Self]:
        return GetInputHandler(
            cls,
            key_prefix or f"{cls.__name__.lower()}-auto",
            timeout=timeout,
            poll_interval=poll_interval,
            raise_timeout_error=raise_timeout_error,
            exclude_keys=exclude_keys,
            flow_run_id=flow_run_id,
        )

    @classmethod
    def subclass_from_base_model_type(cls, model_cls: type[pydantic.BaseModel]) -> type[RunInput]:
        """A RunInput with the fields of a plain pydantic model."""
        return cast("type[RunInput]", type(model_cls.__name__, (RunInput, model_cls), {}))


class AutomaticRunInput(RunInput, Generic[T]):
    """Input of a plain type (`wait_for_input=int`): its value is `value`."""

    value: T

    @classmethod
    def load(cls, keyset: Keyset, flow_run_id: uuid.UUID | str | None = None) -> Any:
        return super().load(keyset, flow_run_id=flow_run_id).value

    @classmethod
    def subclass_from_type(cls, type_: type[T]) -> type[AutomaticRunInput[T]]:
        name = getattr(type_, "__name__", "Value")
        return pydantic.create_model(
            f"{name.capitalize()}", __base__=AutomaticRunInput, value=(type_, ...)
        )


def run_input_subclass_from_type(type_: Any) -> type[RunInput]:
    """The RunInput for what `wait_for_input=` was given: a RunInput as it is, a pydantic
    model's fields, or a plain type wrapped as `value`."""
    if isinstance(type_, type) and issubclass(type_, RunInput):
        return type_
    if isinstance(type_, type) and issubclass(type_, pydantic.BaseModel):
        return RunInput.subclass_from_base_model_type(type_)
    return AutomaticRunInput.subclass_from_type(type_)


def _create_once(key: str, value: Any, flow_run_id: str) -> None:
    # A later attempt of the run (a replay) saves the same schema again: keep the first.
    with contextlib.suppress(RunInputExists):
        create_flow_run_input(key, value, flow_run_id=flow_run_id)


def send_input(
    run_input: Any,
    flow_run_id: uuid.UUID | str,
    sender: str | None = None,
    key_prefix: str | None = None,
) -> None:
    """Send `run_input` (a RunInput, a pydantic model or a JSON value) to a flow run."""
    model = run_input if isinstance(run_input, pydantic.BaseModel) else None
    if key_prefix is None:
        key_prefix = (
            f"{type(model).__name__.lower()}-auto"
            if model is not None
            else f"{type(run_input).__name__.lower()}-auto"
        )
    key = f"{key_prefix}-{uuid.uuid4()}"
    sender = sender or _sender()
    if model is not None:
        create_flow_run_input_from_model(key, model, flow_run_id=flow_run_id, sender=sender)
    else:
        create_flow_run_input(key, {"value": run_input}, flow_run_id=flow_run_id, sender=sender)


class GetInputHandler(Generic[R]):
    """Iterates over the inputs sent to a flow run under a key prefix, waiting for new
    ones (sync `for` / `next()`, or `async for` / `await anext()`)."""

    def __init__(
        self,
        run_input_cls: type[R],
        key_prefix: str,
        *,
        timeout: float | None = 3600,
        poll_interval: float = 10,
        raise_timeout_error: bool = False,
        exclude_keys: set[str] | None = None,
        flow_run_id: uuid.UUID | str | None = None,
        unwrap: bool = False,
    ) -> None:
        self.run_input_cls = run_input_cls
        self.key_prefix = key_prefix
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.raise_timeout_error = raise_timeout_error
        self.exclude_keys = set(exclude_keys or ())
        self.flow_run_id = current_flow_run_id(flow_run_id)
        self.unwrap = unwrap

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            return self.next()
        except TimeoutError:
            if self.raise_timeout_error:
                raise
            raise StopIteration from None

    def next(self) -> Any:
        """The next input not seen yet; raises TimeoutError after `timeout` seconds."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            found = filter_flow_run_input(
                self.key_prefix,
                limit=1,
                exclude_keys=self.exclude_keys,
                flow_run_id=self.flow_run_id,
            )
            if found:
                record = found[0]
                self.exclude_keys.add(record.key)
                instance = self.run_input_cls.load_from_flow_run_input(record)
                return getattr(instance, "value", instance) if self.unwrap else instance
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"No input with key prefix {self.key_prefix!r} reached flow run "
                    f"{self.flow_run_id} within {self.timeout:g} s."
                )
            time.sleep(self.poll_interval)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.anext()
        except TimeoutError:
            if self.raise_timeout_error:
                raise
            raise StopAsyncIteration from None

    async def anext(self) -> Any:
        return await asyncio.to_thread(self.next)


def receive_input(
    input_type: Any,
    timeout: float | None = 3600,
    poll_interval: float = 10,
    raise_timeout_error: bool = False,
    exclude_keys: set[str] | None = None,
    key_prefix: str | None = None,
    flow_run_id: uuid.UUID | str | None = None,
    with_metadata: bool = False,
) -> GetInputHandler[Any]:
    """Iterate over inputs of `input_type` sent to the current (or given) flow run. For a
    plain type, the values themselves (or their AutomaticRunInput with `with_metadata`)."""
    model = run_input_subclass_from_type(input_type)
    automatic = issubclass(model, AutomaticRunInput)
    if key_prefix is None:
        name = input_type.__name__ if isinstance(input_type, type) else type(input_type).__name__
        key_prefix = f"{name.lower()}-auto"
    return GetInputHandler(
        model,
        key_prefix,
        timeout=timeout,
        poll_interval=poll_interval,
        raise_timeout_error=raise_timeout_error,
        exclude_keys=exclude_keys,
        flow_run_id=flow_run_id,
        unwrap=automatic and not with_metadata,
    )
