"""The public API is pinned, and Prefect-style import paths work."""

from __future__ import annotations

import stratoflow


def test_all_is_pinned() -> None:
    assert sorted(stratoflow.__all__) == [
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
    assert len(stratoflow.__all__) == len(set(stratoflow.__all__))
    for name in stratoflow.__all__:
        assert hasattr(stratoflow, name), name


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from stratoflow import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == set(stratoflow.__all__)


def test_version() -> None:
    assert stratoflow.__version__ == "0.1.0"


def test_tasks_module_paths() -> None:
    from stratoflow.tasks import Task, exponential_backoff, task, task_input_hash

    assert task is stratoflow.task
    assert Task is stratoflow.Task
    assert exponential_backoff is stratoflow.exponential_backoff
    assert exponential_backoff(10)(3) == [10.0, 20.0, 40.0]
    assert callable(task_input_hash)


def test_flows_module_paths() -> None:
    from stratoflow.flows import Flow, flow

    assert flow is stratoflow.flow
    assert Flow is stratoflow.Flow


def test_futures_module_paths() -> None:
    from stratoflow.futures import StratoFuture, as_completed, wait

    assert wait is stratoflow.wait
    assert as_completed is stratoflow.as_completed
    assert StratoFuture is stratoflow.StratoFuture


def test_cache_policies_module_paths() -> None:
    from stratoflow.cache_policies import (
        FLOW_PARAMETERS,
        INPUTS,
        NONE,
        RUN_ID,
        TASK_SOURCE,
        CachePolicy,
    )

    for policy in (INPUTS, TASK_SOURCE, FLOW_PARAMETERS, RUN_ID, NONE):
        assert isinstance(policy, CachePolicy)
    assert isinstance(INPUTS + TASK_SOURCE, CachePolicy)
    assert repr(INPUTS + TASK_SOURCE) == "INPUTS + TASK_SOURCE"


def test_states_module_paths() -> None:
    from stratoflow.states import (
        AwaitingRetry,
        Cached,
        Cancelled,
        Cancelling,
        Completed,
        Crashed,
        Failed,
        Late,
        Paused,
        Pending,
        Retrying,
        Running,
        Scheduled,
        State,
        StateType,
        TimedOut,
    )

    assert State is stratoflow.State
    assert StateType is stratoflow.StateType
    expected = {
        Completed: ("Completed", StateType.COMPLETED),
        Cached: ("Cached", StateType.COMPLETED),
        Failed: ("Failed", StateType.FAILED),
        TimedOut: ("TimedOut", StateType.FAILED),
        Crashed: ("Crashed", StateType.CRASHED),
        Cancelled: ("Cancelled", StateType.CANCELLED),
        Cancelling: ("Cancelling", StateType.CANCELLING),
        Pending: ("Pending", StateType.PENDING),
        Running: ("Running", StateType.RUNNING),
        Retrying: ("Retrying", StateType.RUNNING),
        Scheduled: ("Scheduled", StateType.SCHEDULED),
        AwaitingRetry: ("AwaitingRetry", StateType.SCHEDULED),
        Late: ("Late", StateType.SCHEDULED),
        Paused: ("Paused", StateType.PAUSED),
    }
    for factory, (name, state_type) in expected.items():
        state = factory()
        assert (state.name, state.type) == (name, state_type)


def test_other_module_paths() -> None:
    from stratoflow.annotations import allow_failure, unmapped
    from stratoflow.exceptions import (
        MappingLengthMismatch,
        MissingContextError,
        OptionError,
        ParameterValidationError,
    )
    from stratoflow.logging import get_run_logger
    from stratoflow.runs import cancel_flow_run
    from stratoflow.runtime import flow_run, task_run
    from stratoflow.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

    assert allow_failure is stratoflow.allow_failure
    assert unmapped is stratoflow.unmapped
    assert get_run_logger is stratoflow.get_run_logger
    assert cancel_flow_run is stratoflow.cancel_flow_run
    assert ThreadPoolTaskRunner is stratoflow.ThreadPoolTaskRunner
    assert ProcessPoolTaskRunner is stratoflow.ProcessPoolTaskRunner
    assert flow_run.id is None
    assert task_run.id is None
    assert issubclass(OptionError, ValueError)
    assert issubclass(ParameterValidationError, TypeError)
    assert issubclass(MissingContextError, RuntimeError)
    assert issubclass(MappingLengthMismatch, ValueError)


def test_concurrency_module_path_is_not_shadowed():
    import importlib

    module = importlib.import_module("stratoflow.concurrency")
    from stratoflow.concurrency import concurrency, rate_limit

    assert callable(concurrency) and callable(rate_limit)
    assert module.concurrency is concurrency
