"""What a Prefect client method with no stratoflow counterpart says to use instead."""

from __future__ import annotations

from stratoflow.exceptions import StratoflowError


class UnsupportedClientMethod(StratoflowError, AttributeError):
    """The client has no such method: stratoflow has no REST API, and what the method
    did is done another way (the message says which)."""


_DEPLOYMENT_DEFINITIONS = (
    "deployments are defined in stratoflow.yaml and stored by `strato deploy` (or "
    "`flow.deploy()`); `strato deployment delete NAME` deletes one"
)
_POOL_DEFINITIONS = (
    "work pools and queues are declared in stratoflow.yaml (`strato deploy`); "
    "`strato work-queue pause|resume` pauses a queue"
)
_PAUSED_RUNS = "stratoflow does not pause runs for input (docs/migrating-from-prefect.md)"

_INSTEAD = {
    "create_flow_run": (
        "a flow run starts when the flow is called; for a deployed flow use "
        "create_flow_run_from_deployment(deployment_name)"
    ),
    "update_flow_run": "a run's name, parameters and tags are set when it is created",
    "set_flow_run_name": "a run's name is set when it is created (`flow_run_name=`)",
    "resume_flow_run": _PAUSED_RUNS,
    "create_flow_run_input": _PAUSED_RUNS,
    "read_flow_run_input": _PAUSED_RUNS,
    "create_task_run": "a task run starts when the task is called inside a flow",
    "delete_task_run": "task runs are deleted with their flow run (delete_flow_run)",
    "create_deployment": _DEPLOYMENT_DEFINITIONS,
    "update_deployment": _DEPLOYMENT_DEFINITIONS,
    "delete_deployment": _DEPLOYMENT_DEFINITIONS,
    "create_work_pool": _POOL_DEFINITIONS,
    "update_work_pool": _POOL_DEFINITIONS,
    "delete_work_pool": _POOL_DEFINITIONS,
    "create_work_queue": _POOL_DEFINITIONS,
    "update_work_queue": _POOL_DEFINITIONS,
    "read_flow": "stratoflow stores no flow objects: runs and deployments carry `flow_name`",
    "read_flows": "stratoflow stores no flow objects: runs and deployments carry `flow_name`",
    "read_flow_by_name": "stratoflow stores no flow objects: runs and deployments carry "
    "`flow_name`",
    "create_artifact": "create_markdown_artifact(...) and the other helpers of "
    "stratoflow.artifacts create artifacts",
    "read_latest_artifacts": "stratoflow.artifacts.list_artifacts() lists the newest "
    "version of each key",
    "create_logs": "get_run_logger() inside a run writes its logs",
    "read_events": "read events with `strato events ls` or "
    "stratoflow.events.on_read.event_reader_for(services).query(...)",
    "read_block_document_by_name": "Block.load(name) (stratoflow.blocks) loads a block",
}


def unsupported_method(client: str, name: str) -> UnsupportedClientMethod:
    instead = _INSTEAD.get(name)
    if instead is not None:
        return UnsupportedClientMethod(f"{client}.{name} is not supported: {instead}.")
    return UnsupportedClientMethod(
        f"{client} has no method {name!r}: stratoflow has no REST API, and its client "
        "covers the methods listed in docs/sdk.md ('Client')."
    )
