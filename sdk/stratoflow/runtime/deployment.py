"""The deployment of the current flow run (Prefect's `prefect.runtime.deployment`):
`id`, `name`, `version`, `parameters`, `flow_run_id`.

Deployments are known by name in stratoflow, so `id` is the deployment's name. Outside
a run of a deployment, `id`, `name` and `version` are None and `parameters` is empty;
`flow_run_id` is the current flow run's id whenever there is one (as in Prefect).
"""

from __future__ import annotations

from typing import Any

from stratoflow.context import FlowRunContext

__all__ = ["flow_run_id", "id", "name", "parameters", "version"]


def _read(name: str) -> Any:
    ctx = FlowRunContext.get()
    run = ctx.flow_run if ctx is not None else None
    if name == "flow_run_id":
        return run.id if run is not None else None
    deployed = run is not None and run.deployment_name is not None
    if name == "parameters":
        # A deployed run's parameters: the deployment's defaults merged with the run's own.
        return dict(run.parameters) if deployed and run is not None else {}
    if not deployed or run is None:
        return None
    if name in ("id", "name"):
        return run.deployment_name
    return run.flow_version  # a deployed run records its deployment's version here


def __getattr__(name: str) -> Any:
    if name in __all__:
        return _read(name)
    raise AttributeError(f"stratoflow.runtime.deployment has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
