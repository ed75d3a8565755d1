"""`@flow`: a frozen flow definition attached to a plain function."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, ParamSpec, TypeVar, overload

from stratoflow._callables import BoundSignature, bound_copy, identity_key, unwrap_method
from stratoflow._hook_decorators import StateHookDecorators
from stratoflow._options import FlowOptions, Hook, validate_options
from stratoflow.engine.flow_engine import call_flow, call_flow_async
from stratoflow.engine.parameter_schema import ParameterSchema, parameter_schema
from stratoflow.engine.parameters import ParameterValidator
from stratoflow.exceptions import OptionError
from stratoflow.utilities.visualization import mermaid_graph_of_flow, visualize_flow

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, eq=False)
class Flow(StateHookDecorators, Generic[P, R]):
    """A flow definition. Calling it runs a flow run in this process; calling an
    `async def` flow returns a coroutine that runs it when awaited."""

    fn: Callable[P, R]
    options: FlowOptions
    isclassmethod: bool = False
    isstaticmethod: bool = False
    _bound: tuple[Any, ...] = field(default=(), repr=False)
    """(instance,) for `obj.method`, (class,) for a classmethod: passed first."""
    name: str = field(init=False)
    isasync: bool = field(init=False)
    flow_key: str = field(init=False)
    _signature: BoundSignature = field(init=False, repr=False)
    _validator: ParameterValidator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        fn, isclassmethod, isstaticmethod = unwrap_method(self.fn)
        if fn is not self.fn:
            object.__setattr__(self, "fn", fn)
            object.__setattr__(self, "isclassmethod", isclassmethod)
            object.__setattr__(self, "isstaticmethod", isstaticmethod)
        if inspect.isasyncgenfunction(self.fn) or inspect.isgeneratorfunction(self.fn):
            # Prefect runs generator flows step by step; here the run needs one result.
            which = "an async generator" if inspect.isasyncgenfunction(self.fn) else "a generator"
            raise OptionError(
                f"@flow {self.fn.__name__!r} is {which}; flows are functions "
                "(`def` or `async def`) that return their result. Return a list instead."
            )
        name = self.options.name or self.fn.__name__.replace("_", "-")
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "isasync", inspect.iscoroutinefunction(self.fn))
        set_(self, "flow_key", identity_key(self.fn, name))
        set_(self, "_signature", BoundSignature(self.fn))
        # Built now (at decoration) so that the first flow call pays nothing for it.
        validator = ParameterValidator(
            name, self._signature.signature, getattr(self.fn, "__module__", None)
        )
        set_(self, "_validator", validator)
        for attribute in ("__doc__", "__module__", "__qualname__"):
            set_(self, attribute, getattr(self.fn, attribute, None))
        set_(self, "__wrapped__", self.fn)

    def __getattr__(self, item: str) -> Any:
        if item in FlowOptions.model_fields:
            return getattr(self.options, item)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {item!r}")

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r}, fn={self.fn.__qualname__})"

    # Methods, as in Prefect: `obj.method(x)` passes `obj` as `self` (a classmethod's
    # class as `cls`); a staticmethod is called as it is.

    def __get__(self, instance: Any, owner: type | None = None) -> Flow[P, R]:
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

    @cached_property
    def parameters(self) -> ParameterSchema:
        """The parameters' schema (Prefect's `Flow.parameters`), built when first read."""
        return parameter_schema(self.fn)

    def record_parameters(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters a flow run records: without the bound `self`/`cls` (Prefect
        does not store it either); the run's context keeps it."""
        if not self._bound:
            return dict(parameters)
        bound = self._bound[0]
        return {name: value for name, value in parameters.items() if value is not bound}

    # Hooks added with decorators (`@my_flow.on_failure`), as in Prefect; on_completion,
    # on_failure and on_running come from StateHookDecorators.

    def on_cancellation(self, fn: Hook) -> Hook:
        return self._add_hook("on_cancellation", fn)

    def on_crashed(self, fn: Hook) -> Hook:
        return self._add_hook("on_crashed", fn)

    @property
    def on_cancellation_hooks(self) -> list[Hook]:
        return list(self.options.on_cancellation)

    @property
    def on_crashed_hooks(self) -> list[Hook]:
        return list(self.options.on_crashed)

    def with_options(self, **changes: Any) -> Flow[P, R]:
        values = {k: getattr(self.options, k) for k in self.options.model_fields_set}
        values.update(changes)
        return dataclasses.replace(
            self, options=validate_options(FlowOptions, "@flow", self.name, values)
        )

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        if self._bound:
            args = (*self._bound, *args)
        return self._signature.bind(f"flow {self.name!r}", args, kwargs)

    def call_fn(self, parameters: Mapping[str, Any]) -> Any:
        return self._signature.call(self.fn, parameters)

    def validate_parameters(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """Coerce parameters to the type hints; raises ParameterValidationError."""
        return self._validator.validate(parameters)

    def parameter_schema(self) -> dict[str, Any] | None:
        """The JSON Schema of the parameters, from the type hints (what a deployment stores
        to check a run's parameters before creating it); None with validate_parameters=False."""
        return self._validator.json_schema() if self.options.validate_parameters else None

    def visualize(self, *args: Any, **kwargs: Any) -> None:
        """Draw the flow's task graph with Graphviz, recording its task calls instead
        of running them (Prefect's `flow.visualize()`)."""
        visualize_flow(self, *args, **kwargs)

    def generate_mermaid_graph(self, *args: Any, **kwargs: Any) -> str:
        """The flow's task graph as Mermaid text (Prefect's
        `flow.generate_mermaid_graph()`); needs no Graphviz."""
        return mermaid_graph_of_flow(self, *args, **kwargs)

    def deploy(self, name: str, **options: Any) -> Any:
        """Deploy this flow (bundling its project directory); see `stratoflow.yaml`
        deployments for the options. Needs the AWS backend."""
        from stratoflow.deployments.deploy import deploy_flow

        return deploy_flow(self, name, **options)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return_state = bool(kwargs.pop("return_state", False))
        if self.isasync:
            return call_flow_async(self, args, kwargs, return_state=return_state)  # type: ignore[return-value]
        return call_flow(self, args, kwargs, return_state=return_state)  # type: ignore[no-any-return]


@overload
def flow(__fn: Callable[P, R]) -> Flow[P, R]: ...


@overload
def flow(__fn: None = None, **options: Any) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(__fn: Callable[P, R] | None = None, **options: Any) -> Any:
    """Turn a function into a flow. Use bare (`@flow`) or with options (`@flow(retries=2)`).

    Options: name, version, description, flow_run_name, retries, retry_delay_seconds,
    timeout_seconds, validate_parameters, task_runner, log_prints, persist_result,
    result_storage, result_storage_key, result_serializer, tags, on_completion,
    on_failure, on_cancellation, on_crashed, on_running, replay.
    """

    def decorate(fn: Callable[P, R]) -> Flow[P, R]:
        if not callable(unwrap_method(fn)[0]):
            raise OptionError(f"@flow decorates a function, got {type(fn).__name__}")
        target = getattr(fn, "__name__", repr(fn))
        return Flow(fn=fn, options=validate_options(FlowOptions, "@flow", target, options))

    if __fn is not None:
        return decorate(__fn)
    return decorate
