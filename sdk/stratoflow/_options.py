"""Validation of `@flow` and `@task` options with pydantic, turned into errors that say
which option is wrong and how to fix it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from stratoflow._assets import Asset, as_assets
from stratoflow.cache_policies import CachePolicy
from stratoflow.exceptions import OptionError
from stratoflow.results import ResultStore, coerce_result_store

NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Hook = Callable[..., Any]

_HINTS = {
    "retries": "Pass a whole number >= 0, e.g. retries=3.",
    "retry_delay_seconds": (
        "Pass seconds (10), one delay per retry ([1, 10, 60]) or exponential_backoff(10)."
    ),
    "retry_jitter_factor": "Pass a number >= 0, e.g. retry_jitter_factor=0.5 for ±50%.",
    "timeout_seconds": "Pass a number of seconds > 0, e.g. timeout_seconds=300.",
    "tags": "Pass a list of strings, e.g. tags=['etl', 'nightly'].",
    "cache_expiration": "Pass a datetime.timedelta, e.g. timedelta(hours=1).",
    "cache_policy": "Pass a policy from stratoflow.cache_policies, e.g. INPUTS + TASK_SOURCE.",
    "result_serializer": "Use 'auto' (JSON when possible), 'json' or 'cloudpickle'.",
    "task_runner": "Pass ThreadPoolTaskRunner() or ProcessPoolTaskRunner().",
    "asset_deps": "Pass a list of asset keys or Assets, e.g. asset_deps=['s3://bucket/raw.csv'].",
}


class _Options(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    name: str | None = None
    description: str | None = None
    version: str | None = None
    tags: tuple[str, ...] = ()
    retries: Annotated[int, Field(ge=0, strict=True)] = 0
    retry_delay_seconds: NonNegative | list[NonNegative] | Callable[[int], Any] = 0
    timeout_seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    persist_result: bool | None = None
    result_storage: ResultStore | None = None
    result_serializer: Literal["auto", "json", "cloudpickle"] = "auto"
    result_storage_key: str | None = None
    log_prints: bool | None = None
    cache_result_in_memory: bool = True
    """False: once the result is persisted, the state does not keep the value; reading
    it (`state.result()`, `future.result()`) loads it from the result store."""
    on_completion: tuple[Hook, ...] = ()
    on_failure: tuple[Hook, ...] = ()
    on_running: tuple[Hook, ...] = ()

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, str):
            raise ValueError(f"tags must be a list of strings, not the single string {value!r}")
        return tuple(value)

    @field_validator("result_storage", mode="before")
    @classmethod
    def _storage(cls, value: Any) -> Any:
        return coerce_result_store(value)

    @field_validator("on_completion", "on_failure", "on_running", mode="before")
    @classmethod
    def _hooks(cls, value: Any) -> Any:
        if value is None:
            return ()
        if callable(value):
            return (value,)
        fix = "pass a function hook(flow_or_task, run, state) or a list of them"
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise ValueError(f"hooks must be callables, got {value!r}; {fix}")
        hooks = tuple(value)
        for hook in hooks:
            if not callable(hook):
                raise ValueError(f"hooks must be callables, got {hook!r}; {fix}")
        return hooks


class TaskOptions(_Options):
    task_run_name: str | Callable[[], str] | None = None
    retry_jitter_factor: NonNegative | None = None
    retry_condition_fn: Callable[..., bool] | None = None
    cache_policy: CachePolicy | None = None
    cache_key_fn: Callable[..., str | None] | None = None
    cache_expiration: timedelta | None = None
    refresh_cache: bool | None = None
    viz_return_value: Any = None
    """What a call of the task returns while `flow.visualize()` records the flow."""
    on_commit: tuple[Hook, ...] = ()  # hook(transaction): stratoflow.transactions
    on_rollback: tuple[Hook, ...] = ()
    asset_deps: tuple[Asset, ...] = ()
    """Assets the task reads (stratoflow.assets): upstream of what it materializes."""

    @field_validator("on_commit", "on_rollback", mode="before")
    @classmethod
    def _transaction_hooks(cls, value: Any) -> Any:
        return cls._hooks(value)

    @field_validator("asset_deps", mode="before")
    @classmethod
    def _asset_deps(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, str | Asset) or not isinstance(value, Iterable):
            raise ValueError("asset_deps must be a list of asset keys or Assets")
        try:
            return as_assets(value, "asset_deps")
        except TypeError as exc:  # reported with the other options' problems
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _one_cache_rule(self) -> TaskOptions:
        if self.cache_policy is not None and self.cache_key_fn is not None:
            raise ValueError(
                "cache_policy and cache_key_fn both given: use one of them "
                "(cache_key_fn is a custom policy)"
            )
        return self


class FlowOptions(_Options):
    flow_run_name: str | Callable[[], str] | None = None
    validate_parameters: bool = True
    replay: bool = True
    """A deployed run's later attempts reuse the task runs earlier ones completed."""
    task_runner: Any = None
    on_cancellation: tuple[Hook, ...] = ()
    on_crashed: tuple[Hook, ...] = ()

    @field_validator("on_cancellation", "on_crashed", mode="before")
    @classmethod
    def _more_hooks(cls, value: Any) -> Any:
        return cls._hooks(value)

    @field_validator("task_runner", mode="before")
    @classmethod
    def _runner(cls, value: Any) -> Any:
        from stratoflow.task_runners import TaskRunner

        if value is None:
            return None
        if isinstance(value, type) and issubclass(value, TaskRunner):
            return value()
        if not isinstance(value, TaskRunner):
            raise ValueError(f"task_runner must be a TaskRunner, got {type(value).__name__}")
        return value


OptionsT = TypeVar("OptionsT", bound=_Options)


def with_hook(options: OptionsT, kind: str, hook: Hook) -> OptionsT:
    """`options` with `hook` added to its `kind` hooks (`on_completion`, ...)."""
    if not callable(hook):
        raise TypeError(f"{kind} hooks must be callables, got {hook!r}")
    return options.model_copy(update={kind: (*getattr(options, kind), hook)})


def validate_options(
    model: type[OptionsT], kind: str, target: str, values: dict[str, Any]
) -> OptionsT:
    """Build the options model, or raise OptionError listing every problem with a fix."""
    try:
        return model(**values)
    except ValidationError as exc:
        problems: dict[str, str] = {}
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "options"
            if field in problems:
                continue  # a union reports one error per member; the first is enough
            if err["type"] == "extra_forbidden":
                valid = ", ".join(sorted(model.model_fields))
                problems[field] = f"{field}: not an option of {kind}. Valid options: {valid}."
                continue
            message = err["msg"].removeprefix("Value error, ")
            hint = _HINTS.get(field, "")
            # The whole value given, not the part pydantic complains about (tags=['a', 1]).
            shown = f"={values[field]!r}" if field in values else ""
            problems[field] = f"{field}{shown}: {message}. {hint}".rstrip()
        listing = "\n  - ".join(problems.values())
        raise OptionError(f"Invalid options for {kind} {target!r}:\n  - {listing}") from None
