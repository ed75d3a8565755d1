"""Naming a flow run from its flow's `flow_run_name` template."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stratoflow._callables import render_run_name
from stratoflow.context import FlowRunContext, Services, flow_run_context
from stratoflow.models import FlowRun
from stratoflow.names import generate_run_name
from stratoflow.task_runners import ThreadPoolTaskRunner

if TYPE_CHECKING:
    from stratoflow.flows import Flow


def name_flow_run(
    flow: Flow[..., Any], flow_run: FlowRun, parameters: dict[str, Any], services: Services
) -> tuple[str, Exception | None]:
    """The run's name, and the problem with the template (then a generated name)."""
    template = flow.options.flow_run_name
    if template is None:
        return generate_run_name(), None
    token = None
    if callable(template):
        # As in Prefect, a callable reads the run (parameters, flow name, id)
        # from stratoflow.runtime.
        naming = FlowRunContext(
            flow=flow,
            flow_run=flow_run,
            parameters=parameters,
            task_runner=ThreadPoolTaskRunner(),
            services=services,
        )
        token = flow_run_context.set(naming)
    try:
        return render_run_name(template, parameters, f"flow {flow.name!r}"), None
    except ValueError as exc:
        return generate_run_name(), exc
    finally:
        if token is not None:
            flow_run_context.reset(token)
