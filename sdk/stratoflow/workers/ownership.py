"""A worker runs only its own pool's runs: the one check every worker makes, before it
claims or runs anything, that a flow run belongs to the work queue its message came from.

Anything with worker permissions can send to every work queue, so a message is untrusted
input: what decides is the run's stored `work_pool_name` / `work_queue_name`, compared
with the SQS queue the message was received from (the poller's own queue; a Lambda
record's `eventSourceARN`; the queue the ECS dispatcher passes to its container). The
queue's name is derived from the run with the resource model's naming function and
compared, never parsed: pool and queue names may contain `-`, so `<prefix>-<pool>-<queue>`
does not split back into one pool and queue.
"""

from __future__ import annotations

from stratoflow import resources
from stratoflow.exceptions import StratoflowError
from stratoflow.models import FlowRun
from stratoflow.run_ids import carries_pool, pool_tag
from stratoflow.workers.messages import FlowRunMessage

DEFAULT = "default"
"""A run without a pool or queue is the default queue's (where it is enqueued)."""


def run_pool_and_queue(run: FlowRun) -> tuple[str, str]:
    """The work pool and work queue whose SQS queue a run's messages are sent to."""
    return run.work_pool_name or DEFAULT, run.work_queue_name or DEFAULT


def foreign_run_reason(
    run: FlowRun, *, prefix: str, queue_name: str, message: FlowRunMessage | None = None
) -> str | None:
    """Why `run` may not be run from the SQS queue `queue_name` (None: it may).

    Refused: a run of another pool or queue, or a message whose own `work_pool` /
    `work_queue` differ from the run's. The reason names the run, its pool and queue and
    the queue the message arrived on, and says what to do."""
    pool, queue = run_pool_and_queue(run)
    own = resources.work_queue_name(prefix, pool, queue)
    problem = None
    if queue_name != own:
        problem = f"its message arrived on SQS queue {queue_name!r}"
    elif message is not None and message.work_pool is not None:
        claimed = (message.work_pool, message.work_queue or DEFAULT)
        if claimed != (pool, queue):
            problem = f"its message claims work pool {claimed[0]!r}, work queue {claimed[1]!r}"
    if problem is None:
        return None
    return (
        f"flow run {run.id} belongs to work pool {pool!r}, work queue {queue!r} (SQS queue "
        f"{own!r}) but {problem}: a worker runs only its own queue's runs. The run was left "
        f"as it was, for its own queue's workers. If this message was meant to run it, send "
        f"it to {own!r}; otherwise find out who sent it (anything with worker permissions "
        "can send to every work queue)."
    )


class NotInPoolNamespace(StratoflowError):
    """A run whose id is not in its pool's namespace: it is not sent to a work queue."""


def namespace_problem(run: FlowRun) -> str | None:
    """Why a run may not be sent to its pool's queue (None: it may).

    A pool's on-prem workers may write only run items whose id carries their pool's tag
    (stratoflow.run_ids), but an item says which pool it claims: a worker of pool A could
    write one claiming pool B. Whoever sends runs it did not create (the scheduler's
    tick, the sweeps, a retry) sends only runs whose id is in their pool's namespace."""
    pool, _ = run_pool_and_queue(run)
    if carries_pool(run.id, pool):
        return None
    return (
        f"flow run {run.id} claims work pool {pool!r}, but its id is not in that pool's "
        f"namespace (the ids of its runs start with {pool_tag(pool)!r}): it was made by an "
        "earlier version of stratoflow, or written by a worker of another pool. It was not "
        "sent to a work queue. Run the deployment again for a new run."
    )
