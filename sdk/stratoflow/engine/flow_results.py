"""A flow run's final state from what its function returned, and what a call of the
flow gives back (Prefect's `FlowRunEngine.handle_success` and `.result()`)."""

from __future__ import annotations

from typing import Any

from stratoflow._options import FlowOptions
from stratoflow.context import Services
from stratoflow.engine.persistence import attach_result, persist_value, wants_persistence
from stratoflow.engine.return_values import decides_state, return_value_to_state
from stratoflow.futures import resolve_futures_to_states
from stratoflow.logging import RunLoggerAdapter
from stratoflow.models import FlowRun
from stratoflow.states import Failed, State, StateType

NOT_RETURNED: Any = object()
"""A flow's returned value when its function did not return (it raised, or never ran)."""


def returned_value(value: Any) -> Any:
    """The flow's return value as Prefect keeps it: futures (in any container) replaced
    by their final states."""
    return resolve_futures_to_states(value)


def flow_state_from_return(
    returned: Any,
    options: FlowOptions,
    services: Services,
    record: FlowRun,
    logger: RunLoggerAdapter,
) -> State:
    """The final state for `returned` (see `return_value_to_state`); a plain value is
    persisted when the flow's settings ask for it."""
    state = return_value_to_state(returned)
    if not state.is_final():
        # A run cannot end in (say) Pending: it would be left Running.
        return Failed(
            f"The flow returned a {state.name!r} state, which is not final. Return a "
            "final state, or wait for the future (future.wait()) before returning its state."
        )
    if decides_state(returned):
        return state
    persist, required = wants_persistence(options.persist_result, None, services)
    if not persist:
        return state
    stored = persist_value(
        state.data,
        store=options.result_storage or services.result_store,
        key_template=options.result_storage_key,
        template_fields={"parameters": record.parameters, "flow_run": record},
        default_key=f"{record.id}/flow",
        serializer=options.result_serializer,
        inline_max_bytes=services.inline_result_max_bytes,
        required=required,
        logger=logger,
        pickle_allowed=services.pickle_results,
        signer=services.result_signer,
    )
    if isinstance(stored, State):
        return stored
    return attach_result(state, record, stored, options.cache_result_in_memory is not False)


def flow_call_result(state: State, returned: Any) -> Any:
    """What `my_flow(...)` gives back, as Prefect's: the returned value itself unless it
    is a State (a list of task run states is given back as it is, even when the run
    failed because of them); otherwise the final state's result, raising its error. A
    returned task run state is the final state's data, so it is given back too."""
    gives_back_returned = (
        returned is not NOT_RETURNED
        and state.is_final()
        and not isinstance(returned, State)
        # A Failed run whose value was not states failed persisting it: raise that.
        and (state.type is not StateType.FAILED or decides_state(returned))
    )
    return returned if gives_back_returned else state.result()
