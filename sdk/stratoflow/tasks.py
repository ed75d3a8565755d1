"""`@task`: a frozen task definition attached to a plain function."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, ParamSpec, TypeVar, cast, overload

from stratoflow._assets import Asset, as_assets
from stratoflow._callables import BoundSignature, bound_copy, identity_key, unwrap_method
from stratoflow._hook_decorators import StateHookDecorators
from stratoflow._options import TaskOptions, validate_options
from stratoflow._transaction_hooks import TransactionHookDecorators
from stratoflow.annotations import allow_failure, opaque, quote, unmapped
from stratoflow.cache_policies import NONE, CacheKeyFnPolicy, CachePolicy
from stratoflow.engine.task_calls import call_task, call_task_async
from stratoflow.exceptions import MappingLengthMismatch, MissingContextError, OptionError
from stratoflow.utilities.visualization import (
    VisualizationUnsupportedError,
    get_task_viz_tracker,
    track_viz_task,
)

if TYPE_CHECKING:
    from stratoflow.background.futures import BackgroundTaskFuture
    from stratoflow.futures import StratoFuture, StratoFutureList

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, eq=False)
class Task(StateHookDecorators, TransactionHookDecorators, Generic[P, R]):
    """A task definition. Call it to run it; `.submit()` and `.map()` run it concurrently.

    Calling an `async def` task returns a coroutine: awaiting it runs the task run."""

    fn: Callable[P, R]
    options: TaskOptions
    isclassmethod: bool = False
    isstaticmethod: bool = False
    _bound: tuple[Any, ...] = field(default=(), repr=False)
    """(instance,) for `obj.method`, (class,) for a classmethod: passed first."""
    name: str = field(init=False)
    isasync: bool = field(init=False)
    task_key: str = field(init=False)
    cache_policy: CachePolicy = field(init=False)
    _signature: BoundSignature = field(init=False, repr=False)

    records_calls_while_visualizing: ClassVar[bool] = True
    """`flow.visualize()` records this task's calls instead of running them."""

    def __post_init__(self) -> None:
        fn, isclassmethod, isstaticmethod = unwrap_method(self.fn)
        if fn is not self.fn:
            object.__setattr__(self, "fn", fn)
            object.__setattr__(self, "isclassmethod", isclassmethod)
            object.__setattr__(self, "isstaticmethod", isstaticmethod)
        if inspect.isasyncgenfunction(self.fn) or inspect.isgeneratorfunction(self.fn):
            # Prefect runs generator tasks step by step; here the run needs one result.
            which = "an async generator" if inspect.isasyncgenfunction(self.fn) else "a generator"
            raise OptionError(
                f"@task {self.fn.__name__!r} is {which}; tasks are functions "
                "(`def` or `async def`) that return their result. Return a list instead."
            )
        # A callable object has no __name__: it is named after its class (as in Prefect).
        name = self.options.name or str(getattr(self.fn, "__name__", type(self.fn).__name__))
        if self.options.cache_key_fn is not None:
            policy: CachePolicy = CacheKeyFnPolicy(self.options.cache_key_fn)
        else:
            policy = self.options.cache_policy or NONE
        if policy is not NONE and self.options.persist_result is False:
            raise OptionError(
                f"@task {name!r} has a cache policy but persist_result=False: a cache hit "
                "returns the stored result, so caching needs it. Drop persist_result=False "
                "or the cache policy."
            )
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "isasync", inspect.iscoroutinefunction(self.fn))
        set_(self, "task_key", identity_key(self.fn, name))
        set_(self, "cache_policy", policy)
        set_(self, "_signature", BoundSignature(self.fn))
        for attribute in ("__doc__", "__module__", "__qualname__"):
            set_(self, attribute, getattr(self.fn, attribute, None))
        set_(self, "__wrapped__", self.fn)

    def __getattr__(self, item: str) -> Any:
        # Prefect-style access to options: my_task.retries, my_task.tags, ...
        if item in TaskOptions.model_fields:
            return getattr(self.options, item)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {item!r}")

    def __repr__(self) -> str:
        return f"Task(name={self.name!r}, fn={getattr(self.fn, '__qualname__', self.name)})"

    # Methods, as in Prefect: `obj.method(x)` passes `obj` as `self` (a classmethod's
    # class as `cls`); a staticmethod is called as it is.

    def __get__(self, instance: Any, owner: type | None = None) -> Task[P, R]:
        if self.isstaticmethod:
            return self
        if self.isclassmethod:
            return bound_copy(self, owner if owner is not None else type(instance))
        if instance is None:
            return self
        return bound_copy(self, instance)

    @property
    def ismethod(self) -> bool:
        return bool(self._bound) and not self.isclassmethod

    # Hooks added with decorators (`@my_task.on_failure`, `@my_task.on_commit`), as in
    # Prefect: StateHookDecorators and TransactionHookDecorators.

    def with_options(self, **changes: Any) -> Task[P, R]:
        """A copy of this task with some options changed."""
        values = {k: getattr(self.options, k) for k in self.options.model_fields_set}
        values.update(changes)
        options = validate_options(TaskOptions, "@task", self.name, values)
        return dataclasses.replace(self, options=options)

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        if self._bound:
            args = (*self._bound, *args)
        return self._signature.bind(f"task {self.name!r}", args, kwargs)

    def call_fn(self, parameters: Mapping[str, Any]) -> Any:
        return self._signature.call(self.fn, parameters)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return_state = bool(kwargs.pop("return_state", False))
        wait_for = kwargs.pop("wait_for", None)
        parameters = self.bind(args, kwargs)
        if get_task_viz_tracker() is not None:  # flow.visualize(): record, do not run
            return track_viz_task(  # type: ignore[no-any-return]
                self.isasync, self.name, parameters, self.options.viz_return_value
            )
        if self.isasync:
            # As in Prefect 3, from sync code too: run it with `asyncio.run(...)`, or
            # `.submit()` it from a flow.
            return call_task_async(  # type: ignore[return-value]
                self, parameters, wait_for=_wait_for(wait_for), return_state=return_state
            )
        result: R = call_task(
            self, parameters, wait_for=_wait_for(wait_for), return_state=return_state
        )
        return result

    def submit(self, *args: Any, **kwargs: Any) -> StratoFuture[R]:
        """Run the task in the flow's task runner; returns a future at once."""
        from stratoflow.context import flow_run_context

        wait_for = kwargs.pop("wait_for", None)
        if get_task_viz_tracker() is not None:
            raise VisualizationUnsupportedError(
                "`task.submit()` is not currently supported by `flow.visualize()`"
            )
        parameters = self.bind(args, kwargs)
        flow_ctx = flow_run_context.get()
        if flow_ctx is None:
            raise MissingContextError(
                f"{self.name}.submit() was called outside a flow. Call the task directly, "
                "or call .submit() from inside a function decorated with @flow."
            )
        return flow_ctx.task_runner.submit(self, parameters, wait_for=wait_for)

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> BackgroundTaskFuture[R]:
        """Run the task on a task worker (docs/background-tasks.md); returns a future."""
        return self.apply_async(args, kwargs)

    def apply_async(
        self,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        wait_for: Iterable[Any] | None = None,
    ) -> BackgroundTaskFuture[R]:
        """`delay` with explicit arguments, after the background runs of `wait_for`."""
        # Loaded by the first background submission, not with every task: a task worker
        # (and most flows) never submits one (the task worker's cold start,
        # bench/cold_start.py).
        from stratoflow.background import submit

        return submit.apply_async(self, args, kwargs, wait_for)

    def map(self, *args: Any, **kwargs: Any) -> StratoFutureList[R]:
        """Submit one task run per element of the iterable arguments.

        Non-iterable arguments, strings, mappings and arguments wrapped in `unmapped()`
        are passed whole to every run. Iterables must have equal lengths.
        """
        from stratoflow.context import flow_run_context
        from stratoflow.futures import StratoFuture, StratoFutureList

        wait_for = kwargs.pop("wait_for", None)
        if get_task_viz_tracker() is not None:
            raise VisualizationUnsupportedError(
                "`task.map()` is not currently supported by `flow.visualize()`"
            )
        flow_ctx = flow_run_context.get()
        if flow_ctx is None:
            raise MissingContextError(
                f"{self.name}.map() was called outside a flow; call it from inside a @flow."
            )
        parameters = self.bind(args, kwargs)
        iterables: dict[str, list[Any]] = {}
        static: dict[str, Any] = {}
        # As in Prefect, allow_failure/quote/opaque(iterable) is mapped over too, each
        # element wrapped again.
        annotated: dict[str, allow_failure[Any] | quote[Any] | opaque[Any]] = {}
        bound = self._bound[0] if self._bound else _NOTHING
        for key, argument in parameters.items():
            if isinstance(argument, allow_failure | quote | opaque):
                value = argument.value
                if _is_mappable(value):
                    iterables[key], annotated[key] = list(value), argument
                else:
                    static[key] = argument
                continue
            value = argument.result() if isinstance(argument, StratoFuture) else argument
            if value is not bound and _is_mappable(value):
                iterables[key] = list(value)
            else:
                static[key] = value
        lengths = {k: len(v) for k, v in iterables.items()}
        if len(set(lengths.values())) > 1:
            described = ", ".join(f"{k}={n}" for k, n in lengths.items())
            raise MappingLengthMismatch(
                f"{self.name}.map() received iterables of different lengths ({described}). "
                "Give them equal lengths, or wrap arguments meant for every run in unmapped()."
            )
        count = next(iter(lengths.values()), 0) if iterables else 0
        submit = flow_ctx.task_runner.submit
        futures: StratoFutureList[R] = StratoFutureList()
        for index in range(count):
            call_parameters = dict(static)
            for key, values in iterables.items():
                call_parameters[key] = values[index]
            for key, annotation in annotated.items():
                call_parameters[key] = annotation.rewrap(call_parameters[key])
            futures.append(submit(self, call_parameters, wait_for=wait_for))
        return futures


@dataclass(frozen=True, eq=False)
class MaterializingTask(Task[P, R]):
    """A task that materializes assets (`@materialize`, stratoflow.assets): each run that
    completes or fails emits a materialization event per asset."""

    assets: tuple[Asset, ...] = ()
    materialized_by: str | None = None
    """The tool that ultimately materializes the assets, e.g. "dbt" or "spark"."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "assets", as_assets(self.assets, "@materialize"))
        if not self.assets:
            raise OptionError(
                f"@materialize {self.name!r} needs at least one asset, e.g. "
                "@materialize('s3://bucket/data.csv')."
            )

    def with_options(
        self, assets: Iterable[str | Asset] | None = None, **changes: Any
    ) -> MaterializingTask[P, R]:
        """A copy with some options changed, and other `assets` when given."""
        copy = cast("MaterializingTask[P, R]", super().with_options(**changes))
        if assets is not None:
            copy = dataclasses.replace(copy, assets=as_assets(assets, "@materialize"))
        return copy


_NOTHING = object()


def _wait_for(value: object) -> Iterable[Any] | None:
    if value is None or isinstance(value, Iterable):
        return value
    raise TypeError(f"wait_for takes a list of futures, got {type(value).__name__}")


def _is_mappable(value: Any) -> bool:
    if isinstance(value, unmapped | str | bytes | Mapping):
        return False
    return isinstance(value, Iterable)


@overload
def task(__fn: Callable[P, R]) -> Task[P, R]: ...


@overload
def task(__fn: None = None, **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(__fn: Callable[P, R] | None = None, **options: Any) -> Any:
    """Turn a function into a task. Use bare (`@task`) or with options (`@task(retries=3)`).

    Options: name, description, tags, version, task_run_name, retries,
    retry_delay_seconds, retry_jitter_factor, retry_condition_fn, timeout_seconds,
    cache_policy, cache_key_fn, cache_expiration, refresh_cache, persist_result,
    result_storage, result_storage_key, result_serializer, log_prints, on_completion,
    on_failure, on_commit, on_rollback, asset_deps.
    """

    def decorate(fn: Callable[P, R]) -> Task[P, R]:
        if not callable(unwrap_method(fn)[0]):
            raise OptionError(f"@task decorates a function, got {type(fn).__name__}")
        target = getattr(fn, "__name__", repr(fn))
        return Task(fn=fn, options=validate_options(TaskOptions, "@task", target, options))

    if __fn is not None:
        return decorate(__fn)
    return decorate


# Prefect keeps these helpers beside the decorator; so do we.
from stratoflow.cache_policies import task_input_hash  # noqa: E402
from stratoflow.retries import exponential_backoff  # noqa: E402

__all__ = ["MaterializingTask", "Task", "exponential_backoff", "task", "task_input_hash"]
