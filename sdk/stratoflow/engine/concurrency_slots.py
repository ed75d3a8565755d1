"""Tag-based task concurrency: a limit named `tag:<tag>` limits task runs carrying the tag.

Before a task run goes Running, the engine takes one slot of every existing, active
`tag:*` limit of the run's tags (in name order, so two runs never wait for each other in
a cycle). While it waits the run is AwaitingConcurrencySlot (set once). The slots are
given back when the run reaches a final state, whatever it is.

The held leases are kept here by task run id rather than on the engine: with the
ProcessPoolTaskRunner the flow's process acquires them (`prepare`) and releases them when
it replays the worker's final state.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from stratoflow.concurrency._acquire import LeaseHolding, acquire_leases
from stratoflow.exceptions import FlowRunCancelled
from stratoflow.settings import get_settings
from stratoflow.states import AwaitingConcurrencySlot, Cancelled, Crashed, State

if TYPE_CHECKING:
    from collections.abc import Iterable

    from stratoflow.concurrency.store import ConcurrencyLimit
    from stratoflow.engine.task_engine import TaskRunEngine

TAG_LIMIT_PREFIX = "tag:"

_holdings: dict[str, LeaseHolding] = {}
_holdings_lock = threading.Lock()


def tag_limit_names(tags: Iterable[str]) -> list[str]:
    return sorted({f"{TAG_LIMIT_PREFIX}{tag}" for tag in tags})


def acquire_tag_slots(engine: TaskRunEngine) -> State | None:
    """Wait for and take the run's tag slots. Returns a final state when the run must not
    start (the flow run was cancelled while it waited); None when it may run."""
    record = engine.run_record
    if not record.tags:
        return None
    services = engine.services
    store = services.concurrency
    limits: dict[str, ConcurrencyLimit] = {}
    for name in tag_limit_names(record.tags):
        limit = store.read(name)
        if limit is not None and limit.active:
            limits[name] = limit
    if not limits:
        return None
    awaiting = False

    def on_wait(name: str) -> None:
        nonlocal awaiting
        if awaiting:
            return
        awaiting = True
        message = (
            f"Waiting for a slot of concurrency limit {name!r} "
            f"(all {limits[name].limit} slot(s) are in use)."
        )
        engine.set_state(AwaitingConcurrencySlot(message))
        engine.logger.info(message)

    flow_ctx = engine.flow_ctx

    def check_abort() -> None:
        if flow_ctx is not None and flow_ctx.cancel_requested.is_set():
            raise FlowRunCancelled(f"Flow run {flow_ctx.flow_run.name!r} was cancelled.")

    try:
        holding = acquire_leases(
            store,
            list(limits),
            1,
            clock=services.clock,
            rng=services.rng,
            lease_seconds=get_settings().concurrency_lease_seconds,
            on_wait=on_wait,
            check_abort=check_abort,
        )
    except FlowRunCancelled:
        return engine.finish(
            Cancelled(
                "The flow run was cancelled while this task run waited for a concurrency slot."
            )
        )
    except BaseException as exc:
        engine.finish(
            Crashed(
                f"Task run crashed while waiting for a concurrency slot: "
                f"{type(exc).__name__}: {exc}",
                data=exc,
            )
        )
        raise
    with _holdings_lock:
        _holdings[record.id] = holding
    return None


def release_tag_slots(engine: TaskRunEngine) -> None:
    """Give back the run's tag slots (no-op when it holds none)."""
    with _holdings_lock:
        holding = _holdings.pop(engine.run_record.id, None)
    if holding is not None:
        holding.release()
