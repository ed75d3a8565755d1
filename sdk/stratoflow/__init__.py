"""stratoflow: `@flow` and `@task` workflows, orchestrated serverless on AWS.

The names here are the public API (pinned by a test); everything else is reachable
through its module (`stratoflow.states`, `stratoflow.cache_policies`,
`stratoflow.concurrency` for `concurrency()` and `rate_limit()`, as in Prefect's
`prefect.concurrency.sync`).

They are loaded on first use (PEP 562): `import stratoflow.scheduler` in a Lambda that
never runs a flow does not pay for the engine (bench/cold_start.py).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stratoflow._tags import tags
    from stratoflow.annotations import allow_failure, unmapped
    from stratoflow.client.orchestration import get_client
    from stratoflow.durable.sleep import sleep
    from stratoflow.durable.wait_for_event import wait_for_event
    from stratoflow.events.emit import emit_event
    from stratoflow.flow_runs import pause_flow_run, resume_flow_run, suspend_flow_run
    from stratoflow.flows import Flow, flow
    from stratoflow.futures import StratoFuture, as_completed, wait
    from stratoflow.logging import get_run_logger
    from stratoflow.retries import exponential_backoff
    from stratoflow.runs import cancel_flow_run
    from stratoflow.states import State, StateType
    from stratoflow.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
    from stratoflow.tasks import Task, task

__version__ = "0.1.0"

_MODULE_OF = {
    "tags": "stratoflow._tags",
    "allow_failure": "stratoflow.annotations",
    "unmapped": "stratoflow.annotations",
    "get_client": "stratoflow.client.orchestration",
    "emit_event": "stratoflow.events.emit",
    "sleep": "stratoflow.durable.sleep",
    "wait_for_event": "stratoflow.durable.wait_for_event",
    "pause_flow_run": "stratoflow.flow_runs",
    "resume_flow_run": "stratoflow.flow_runs",
    "suspend_flow_run": "stratoflow.flow_runs",
    "Flow": "stratoflow.flows",
    "flow": "stratoflow.flows",
    "StratoFuture": "stratoflow.futures",
    "as_completed": "stratoflow.futures",
    "wait": "stratoflow.futures",
    "get_run_logger": "stratoflow.logging",
    "exponential_backoff": "stratoflow.retries",
    "cancel_flow_run": "stratoflow.runs",
    "State": "stratoflow.states",
    "StateType": "stratoflow.states",
    "ProcessPoolTaskRunner": "stratoflow.task_runners",
    "ThreadPoolTaskRunner": "stratoflow.task_runners",
    "Task": "stratoflow.tasks",
    "task": "stratoflow.tasks",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        # `import stratoflow` used to load the engine, so `stratoflow.flows` (or any
        # submodule) was there already: keep that working.
        if not name.startswith("_") and importlib.util.find_spec(f"stratoflow.{name}"):
            return importlib.import_module(f"stratoflow.{name}")
        raise AttributeError(f"module 'stratoflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})


__all__ = [
    "Flow",
    "ProcessPoolTaskRunner",
    "State",
    "StateType",
    "StratoFuture",
    "Task",
    "ThreadPoolTaskRunner",
    "__version__",
    "allow_failure",
    "as_completed",
    "cancel_flow_run",
    "emit_event",
    "exponential_backoff",
    "flow",
    "get_client",
    "get_run_logger",
    "pause_flow_run",
    "resume_flow_run",
    "sleep",
    "suspend_flow_run",
    "tags",
    "task",
    "unmapped",
    "wait",
    "wait_for_event",
]
