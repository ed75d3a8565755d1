"""Typed input for flow runs (Prefect's `prefect.input`): pause for input, send and
receive messages between runs. See docs/durability.md."""

from stratoflow.input.actions import (
    acreate_flow_run_input,
    acreate_flow_run_input_from_model,
    adelete_flow_run_input,
    afilter_flow_run_input,
    aread_flow_run_input,
    create_flow_run_input,
    create_flow_run_input_from_model,
    delete_flow_run_input,
    filter_flow_run_input,
    read_flow_run_input,
)
from stratoflow.input.run_input import (
    AutomaticRunInput,
    GetInputHandler,
    Keyset,
    RunInput,
    RunInputMetadata,
    keyset_from_base_key,
    keyset_from_paused_state,
    receive_input,
    run_input_subclass_from_type,
    send_input,
)

__all__ = [
    "AutomaticRunInput",
    "GetInputHandler",
    "Keyset",
    "RunInput",
    "RunInputMetadata",
    "acreate_flow_run_input",
    "acreate_flow_run_input_from_model",
    "adelete_flow_run_input",
    "afilter_flow_run_input",
    "aread_flow_run_input",
    "create_flow_run_input",
    "create_flow_run_input_from_model",
    "delete_flow_run_input",
    "filter_flow_run_input",
    "keyset_from_base_key",
    "keyset_from_paused_state",
    "read_flow_run_input",
    "receive_input",
    "run_input_subclass_from_type",
    "send_input",
]
