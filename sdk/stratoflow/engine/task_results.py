"""Persisting a task run's returned value, as its settings (and its flow's) ask."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from stratoflow._options import TaskOptions
from stratoflow.context import FlowRunContext, Services
from stratoflow.engine.persistence import attach_result, persist_value, wants_persistence
from stratoflow.logging import RunLoggerAdapter
from stratoflow.models import TaskRun
from stratoflow.results import ResultStore, cache_result_key
from stratoflow.states import State


def persist_task_result(
    state: State,
    options: TaskOptions,
    record: TaskRun,
    flow_ctx: FlowRunContext | None,
    services: Services,
    parameters: Mapping[str, Any],
    logger: Callable[[], RunLoggerAdapter],
) -> State:
    """`state` (Completed with the returned value as its data) once persisted when the
    settings ask for it; a Failed state when a required persist failed. `logger` is
    called only when a warning has to be logged."""
    persist, required = wants_persistence(
        options.persist_result,
        flow_ctx.flow.options.persist_result if flow_ctx is not None else None,
        services,
        forced=record.cache_key is not None,
    )
    if not persist:
        return state
    stored = persist_value(
        state.data,
        store=result_store_for(options, flow_ctx, services),
        key_template=options.result_storage_key,
        template_fields={
            "parameters": parameters,
            "task_run": record,
            "flow_run": flow_ctx.flow_run if flow_ctx else None,
        },
        default_key=cache_result_key(record.cache_key)
        if record.cache_key
        else f"{record.flow_run_id or 'task-runs'}/{record.id}",
        serializer=options.result_serializer,
        inline_max_bytes=services.inline_result_max_bytes,
        required=required,
        logger=logger(),
        # A flow's result_serializer='cloudpickle' opts its tasks in too.
        pickle_allowed=services.pickle_results
        or (flow_ctx is not None and flow_ctx.flow.options.result_serializer == "cloudpickle"),
        signer=services.result_signer,
    )
    if isinstance(stored, State):
        return stored
    return attach_result(state, record, stored, options.cache_result_in_memory is not False)


def result_store_for(
    options: TaskOptions, flow_ctx: FlowRunContext | None, services: Services
) -> ResultStore:
    """The task's result store, else its flow's, else the services' default."""
    store = options.result_storage
    if store is None and flow_ctx is not None:
        store = flow_ctx.flow.options.result_storage
    return store or services.result_store
