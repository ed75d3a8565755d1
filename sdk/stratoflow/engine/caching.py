"""The task cache as the task engine uses it: compute a key, look it up, store a result."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from stratoflow.cache import CacheEntry
from stratoflow.cache_policies import (
    NONE,
    CacheKeyContext,
    CachePolicy,
    cache_key_or_none,
    cache_store_for,
)
from stratoflow.context import FlowRunContext, Services, TaskRunContext
from stratoflow.models import TaskRun
from stratoflow.states import Cached, State

if TYPE_CHECKING:
    from stratoflow.tasks import Task


def cache_key_for(
    task: Task[..., object],
    context: TaskRunContext,
    flow_ctx: FlowRunContext | None,
    logger: logging.LoggerAdapter[Any],
) -> str | None:
    """The run's cache key, or None when the task does not cache (or, as in Prefect,
    when its policy raised: logged, and the run goes on uncached)."""
    policy = task.cache_policy
    if policy is NONE:
        return None
    key_context = CacheKeyContext(
        task_run_context=context,
        inputs=context.parameters,
        flow_parameters=flow_ctx.parameters if flow_ctx else {},
        flow_run_id=flow_ctx.flow_run.id if flow_ctx else None,
    )
    return cache_key_or_none(policy, key_context, logger)


def cached_state(
    key: str, services: Services, record: TaskRun, policy: CachePolicy
) -> State | None:
    """A Cached state carrying the stored result, or None on a miss (an expired entry or
    a deleted result is a miss). Entries live in the policy's `key_storage` when it has
    one (as in Prefect), else in the services' cache store."""
    entry = cache_store_for(policy, services.cache_store).get(key, services.clock.now())
    if entry is None or not entry.result.exists():
        return None
    record.result_record = entry.result
    # result_record is a State field: passed as a keyword to Cached() it would land in
    # `details`, and the hit would return None instead of the stored result.
    state = Cached()
    state.result_record = entry.result
    return state


def store_in_cache(
    key: str,
    state: State,
    services: Services,
    record: TaskRun,
    expiration: timedelta | None,
    policy: CachePolicy,
) -> None:
    if state.result_record is None:
        return
    expires = services.clock.now() + expiration if expiration is not None else None
    record.cache_expiration = expires
    cache_store_for(policy, services.cache_store).put(
        CacheEntry(key=key, result=state.result_record, expiration=expires, task_run_id=record.id)
    )
