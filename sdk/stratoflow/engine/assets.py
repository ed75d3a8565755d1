"""Asset lineage and asset events of task runs (what Prefect 3's task engine does with
its `AssetContext`).

- A task run's **upstream assets** are those the task runs it depends on passed on: the
  runs of the futures (and `wait_for`) in its arguments, and the runs whose results are
  among its arguments (found by identity, as Prefect's `run_results`).
- A `@materialize` task run passes on the assets it materializes; any other task run
  passes on its upstream assets and `asset_deps`, so lineage crosses plain tasks.
- A `@materialize` run that completes emits `stratoflow.asset.referenced` for each
  upstream asset and `stratoflow.asset.materialization.succeeded` for each of its assets
  (related: the upstream assets, role `asset`; the `by=` tool, role
  `asset-materialized-by`; payload: the metadata added during the run); a failed one the
  same with `...failed`. A cached run, one that never started (upstream failed,
  cancelled) and a crash emit nothing.

Nothing of this happens in a flow run without assets: no context is built, no result is
tracked.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from stratoflow._assets import Asset, AssetContext
from stratoflow.context import FlowRunContext, TaskRunContext, task_run_context
from stratoflow.engine.collections import rebuild_children
from stratoflow.states import State, StateType

if TYPE_CHECKING:
    from stratoflow.models import TaskRun
    from stratoflow.tasks import Task

REFERENCED = "stratoflow.asset.referenced"
MATERIALIZATION = "stratoflow.asset.materialization"

_UNTRACKABLE = (bool, type(None), type(...), type(NotImplemented))
_NOT_WALKED = (str, bytes, int, float, complex)


def asset_context_for(
    task: Task[..., Any],
    task_run: TaskRun,
    flow_ctx: FlowRunContext | None,
    parameters: Mapping[str, Any],
) -> AssetContext | None:
    """The asset context of a task run about to start (None when there is nothing to
    track), recording in the flow run what the run passes on."""
    # A MaterializingTask's attributes, read by name: stratoflow.tasks imports the engine.
    # From the instance's fields (vars): on a plain Task, getattr's miss would go through
    # Task.__getattr__ and an AttributeError, about 1 µs of every task call.
    downstream: tuple[Asset, ...] = vars(task).get("assets", ())
    direct = task.options.asset_deps
    lineage = flow_ctx.task_run_assets if flow_ctx is not None else {}
    if not downstream and not direct and not lineage:
        return None
    upstream = _upstream_assets(task_run, flow_ctx, parameters) if lineage else ()
    context = AssetContext(
        direct_asset_dependencies=direct,
        downstream_assets=downstream,
        upstream_assets=upstream,
        materialized_by=getattr(task, "materialized_by", None),
        task_run_id=task_run.id,
    )
    passed_on = downstream or _unique((*upstream, *direct))
    if flow_ctx is not None and passed_on:
        flow_ctx.task_run_assets[task_run.id] = passed_on
    return context


def _upstream_assets(
    task_run: TaskRun, flow_ctx: FlowRunContext | None, parameters: Mapping[str, Any]
) -> tuple[Asset, ...]:
    assert flow_ctx is not None  # lineage lives in a flow run
    run_ids = dict.fromkeys(task_run.upstream_task_run_ids)
    if flow_ctx.run_results:
        run_ids.update(dict.fromkeys(_linked_runs(parameters.values(), flow_ctx)))
    found: list[Asset] = []
    for run_id in run_ids:
        found.extend(flow_ctx.task_run_assets.get(run_id, ()))
    return _unique(found)


def _linked_runs(values: Iterable[Any], flow_ctx: FlowRunContext) -> list[str]:
    """The task runs whose results (or their items) are among `values`, at any depth."""
    links = flow_ctx.run_results
    found: list[str] = []
    seen: dict[int, Any] = {}

    def visit(item: Any) -> Any:
        entry = links.get(id(item))
        if entry is not None:
            run_id, ref = entry
            if ref is None or ref() is item:  # not a recycled id of a freed object
                found.append(run_id)
        if not isinstance(item, _NOT_WALKED):
            rebuild_children(item, visit, seen)
        return item

    for value in values:
        visit(value)
    return found


def link_result(flow_ctx: FlowRunContext, task_run_id: str, value: Any) -> None:
    """Remember `value` and its items (one level, as Prefect) as the result of
    `task_run_id`, when that run passes assets on."""
    if task_run_id not in flow_ctx.task_run_assets:
        return
    links = flow_ctx.run_results

    def link(item: Any) -> Any:
        kind = type(item)
        # Singletons (None, True, small ints) are shared by everything: never a link.
        if kind in _UNTRACKABLE or (kind is int and -5 <= item <= 256):
            return item
        ref = weakref.ref(item) if kind.__weakrefoffset__ else None
        links[id(item)] = (task_run_id, ref)
        return item

    link(value)
    if not isinstance(value, _NOT_WALKED):
        rebuild_children(value, link, {})


def emit_asset_events(
    context: AssetContext,
    state: State,
    task_ctx: TaskRunContext,
    logger: logging.LoggerAdapter[Any],
) -> None:
    """The asset events of a task run that ended in `state` (see the module's doc)."""
    if not context.downstream_assets or state.name == "Cached":
        return
    if state.type is StateType.COMPLETED:
        status = "succeeded"
    elif state.type is StateType.FAILED and state.name != "NotReady":
        status = "failed"
    else:
        return
    # Only a materializing run emits: the event models load here, not with every task
    # engine (the task worker's cold start, bench/cold_start.py).
    from stratoflow.events.emit import emit_event

    upstream = _unique((*context.upstream_assets, *context.direct_asset_dependencies))
    related = [AssetContext.asset_as_related(asset) for asset in upstream]
    if context.materialized_by:
        related.append(AssetContext.related_materialized_by(context.materialized_by))
    token = task_run_context.set(task_ctx)  # the events relate the task run, as any emitted
    try:
        for asset in upstream:
            emit_event(REFERENCED, resource=AssetContext.asset_as_resource(asset))
        for asset in context.downstream_assets:
            emit_event(
                f"{MATERIALIZATION}.{status}",
                resource=AssetContext.asset_as_resource(asset),
                related=related,
                payload=context.materialization_metadata.get(asset.key),
            )
    except Exception:
        # The run's state is final already: a lost event is reported, it does not turn
        # a completed run into a failure (as a failing hook does not).
        logger.exception("Could not emit the asset events of this task run")
    finally:
        task_run_context.reset(token)


def _unique(assets: Iterable[Asset]) -> tuple[Asset, ...]:
    return tuple(dict.fromkeys(assets))
