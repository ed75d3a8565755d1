"""stratoflow: `@flow` and `@task` workflows, orchestrated serverless on AWS.

The names here are the public API (pinned by a test); everything else is reachable
through its module (`stratoflow.states`, `stratoflow.cache_policies`,
`stratoflow.concurrency` for `concurrency()` and `rate_limit()`, as in Prefect's
`prefect.concurrency.sync`).
"""

from stratoflow._tags import tags
from stratoflow.annotations import allow_failure, unmapped
from stratoflow.events.emit import emit_event
from stratoflow.flows import Flow, flow
from stratoflow.futures import StratoFuture, as_completed, wait
from stratoflow.logging import get_run_logger
from stratoflow.retries import exponential_backoff
from stratoflow.runs import cancel_flow_run
from stratoflow.states import State, StateType
from stratoflow.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
from stratoflow.tasks import Task, task

__version__ = "0.1.0"

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
    "get_run_logger",
    "tags",
    "task",
    "unmapped",
    "wait",
]
