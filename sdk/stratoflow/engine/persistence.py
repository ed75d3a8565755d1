"""Persisting a run's return value: when, where, under which key, and what a failure means."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from stratoflow.context import Services
from stratoflow.models import FlowRun, TaskRun
from stratoflow.result_signing import ResultSigner
from stratoflow.results import PickleNotAllowed, ResultRecord, ResultStore, persist
from stratoflow.states import Failed, State


def wants_persistence(
    own: bool | None, inherited: bool | None, services: Services, *, forced: bool = False
) -> tuple[bool, bool]:
    """(persist?, required?): required when the user or caching asked for it; a shared
    backend persists by default, but then a value that cannot be stored is not an error."""
    if forced:
        return True, True
    explicit = own if own is not None else inherited
    if explicit is not None:
        return explicit, explicit
    return services.persist_results_by_default, False


def persist_value(
    value: Any,
    *,
    store: ResultStore,
    key_template: str | None,
    template_fields: Mapping[str, Any],
    default_key: str,
    serializer: str,
    inline_max_bytes: int,
    required: bool,
    logger: logging.LoggerAdapter[Any],
    pickle_allowed: bool = True,
    signer: ResultSigner | None = None,
) -> ResultRecord | State | None:
    """The stored result's record; a Failed state when a required persist failed; None
    when an optional one failed (logged)."""
    try:
        key = key_template.format(**template_fields) if key_template else default_key
    except (KeyError, IndexError, AttributeError, ValueError) as exc:
        return Failed(
            f"The result_storage_key template {key_template!r} could not be rendered "
            f"({type(exc).__name__}: {exc}). It may use {{parameters[name]}}, "
            "{task_run.name} and {flow_run.name}.",
            data=exc,
        )
    try:
        return persist(
            value,
            store,
            key=key,
            serializer=serializer,
            inline_max_bytes=inline_max_bytes,
            pickle_allowed=pickle_allowed,
            signer=signer,
        )
    except PickleNotAllowed as exc:
        if not required:
            logger.warning(
                "The result was not persisted; it is available in this process only. %s", exc
            )
            return None
        return Failed(f"The result could not be persisted: {exc}", data=exc)
    except Exception as exc:  # noqa: BLE001 - turned into a state or a warning below
        if not required:
            logger.warning(
                "The result was not persisted (%s: %s); it is available in this process only.",
                type(exc).__name__,
                exc,
            )
            return None
        hint = (
            "result_serializer='json' stores JSON values only: return one, or use "
            "result_serializer='auto' or 'cloudpickle'."
            if serializer == "json"
            else "Return a JSON or picklable value, or set persist_result=False."
        )
        return Failed(
            f"The result could not be persisted ({type(exc).__name__}: {exc}). {hint}",
            data=exc,
        )


def attach_result(
    state: State, record: FlowRun | TaskRun, stored: ResultRecord | None, keep_in_memory: bool
) -> State:
    """The completed `state` pointing at its stored result; without `keep_in_memory`
    (`cache_result_in_memory=False`) the value is dropped and `state.result()` reads it."""
    state.result_record = stored
    record.result_record = stored
    if stored is not None and not keep_in_memory:
        state.data, state.has_data = None, False
    return state
