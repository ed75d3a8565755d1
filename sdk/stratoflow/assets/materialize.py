"""`@materialize`: a task that materializes assets (Prefect 3's
`prefect.assets.materialize`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from stratoflow._assets import Asset, as_assets
from stratoflow._options import TaskOptions, validate_options
from stratoflow.tasks import MaterializingTask

P = ParamSpec("P")
R = TypeVar("R")


def materialize(
    *assets: str | Asset, by: str | None = None, **task_kwargs: Any
) -> Callable[[Callable[P, R]], MaterializingTask[P, R]]:
    """Turn a function into a task that materializes `assets` (keys such as
    `"s3://bucket/data.csv"`, or `Asset` objects).

    `by` names the tool that ultimately materializes them ("dbt", "spark"); the other
    keyword arguments are @task's options (`asset_deps=[...]` among them).
    """
    if not assets:
        raise TypeError(
            "materialize requires at least one asset argument, e.g. `@materialize(asset)`"
        )
    parsed = as_assets(assets, "@materialize")

    def decorator(fn: Callable[P, R]) -> MaterializingTask[P, R]:
        target = getattr(fn, "__name__", repr(fn))
        options = validate_options(TaskOptions, "@materialize", target, task_kwargs)
        return MaterializingTask(fn=fn, options=options, assets=parsed, materialized_by=by)

    return decorator


__all__ = ["materialize"]
