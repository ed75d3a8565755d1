"""Every `@flow` option: accepted bare and with arguments, `with_options`, and clear
errors at decoration time for invalid values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import stratoflow
from stratoflow import Flow, ProcessPoolTaskRunner, ThreadPoolTaskRunner, flow, task
from stratoflow.context import flow_run_context
from stratoflow.exceptions import OptionError
from stratoflow.results import LocalFileSystemResultStore
from stratoflow.runtime import flow_run as runtime_flow_run
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


def _noop_hook(flow_: Any, run: Any, state: Any) -> None:
    return None


# Bare and called decorators, names, `.fn`


def test_bare_decorator_builds_a_flow_with_default_options() -> None:
    @flow
    def my_flow(x: int) -> int:
        """Doubles x."""
        return x * 2

    assert isinstance(my_flow, Flow)
    options = my_flow.options
    assert options.name is None
    assert options.version is None
    assert options.description is None
    assert options.flow_run_name is None
    assert options.retries == 0
    assert options.retry_delay_seconds == 0
    assert options.timeout_seconds is None
    assert options.validate_parameters is True
    assert options.task_runner is None
    assert options.log_prints is None
    assert options.persist_result is None
    assert options.result_storage is None
    assert options.result_serializer == "auto"
    assert options.tags == ()
    for hook_option in ("on_completion", "on_failure", "on_cancellation", "on_crashed"):
        assert getattr(options, hook_option) == ()
    assert options.on_running == ()
    assert my_flow.__doc__ == "Doubles x."
    assert my_flow.__wrapped__ is my_flow.fn


def test_decorator_called_without_arguments_is_the_same_as_bare(harness: TestHarness) -> None:
    @flow()
    def plain() -> str:
        return "ok"

    assert isinstance(plain, Flow)
    assert plain.name == "plain"
    assert plain() == "ok"


def test_default_name_turns_underscores_into_hyphens() -> None:
    @flow
    def load_daily_sales_report() -> None:
        return None

    assert load_daily_sales_report.name == "load-daily-sales-report"


def test_explicit_name_is_kept_verbatim(harness: TestHarness) -> None:
    @flow(name="My_Flow v2")
    def renamed() -> int:
        return 1

    assert renamed.name == "My_Flow v2"
    renamed()
    assert harness.last_flow_run().flow_name == "My_Flow v2"


def test_fn_is_the_plain_function_and_creates_no_run(harness: TestHarness) -> None:
    def add(a: int, b: int) -> int:
        return a + b

    add_flow = flow(add)
    assert add_flow.fn is add
    assert add_flow.fn(2, 3) == 5
    assert harness.flow_runs() == []
    assert add_flow(2, 3) == 5
    assert len(harness.flow_runs()) == 1


def test_options_are_readable_as_attributes() -> None:
    @flow(retries=2, tags=["a"], version="1.2")
    def attributes() -> None:
        return None

    assert attributes.retries == 2
    assert attributes.tags == ("a",)
    assert attributes.version == "1.2"
    with pytest.raises(AttributeError, match="no attribute 'not_an_option'"):
        _ = attributes.not_an_option


# Each option, accepted and effective


def test_version_and_description_are_recorded(harness: TestHarness) -> None:
    @flow(version="2024.1", description="Loads things.")
    def versioned() -> None:
        return None

    assert versioned.description == "Loads things."
    versioned()
    assert harness.last_flow_run().flow_version == "2024.1"


def test_flow_run_name_template_uses_parameters(harness: TestHarness) -> None:
    @flow(flow_run_name="sales-{region}-{day}")
    def sales(region: str, day: str = "monday") -> None:
        return None

    sales("eu")
    assert harness.last_flow_run().name == "sales-eu-monday"


def test_flow_run_name_callable(harness: TestHarness) -> None:
    @flow(flow_run_name=lambda: "fixed-name")
    def fixed() -> None:
        return None

    fixed()
    assert harness.last_flow_run().name == "fixed-name"


def test_flow_run_name_callable_reads_the_run_from_runtime(harness: TestHarness) -> None:
    # Prefect's documented pattern: the callable reads parameters via the runtime module.
    def name_from_runtime() -> str:
        parameters = runtime_flow_run.parameters
        return f"{runtime_flow_run.flow_name}-with-{parameters['table']}"

    @flow(flow_run_name=name_from_runtime)
    def load_table(table: str) -> str:
        return runtime_flow_run.name

    assert load_table("orders") == "load-table-with-orders"
    assert harness.last_flow_run().name == "load-table-with-orders"


def test_flow_run_name_template_with_unknown_field_fails_the_run(harness: TestHarness) -> None:
    @flow(flow_run_name="run-{missing}")
    def templated(x: int) -> None:
        return None

    state = templated(1, return_state=True)
    assert state.is_failed()
    assert "'run-{missing}'" in state.message
    assert "not one of its parameters (x)" in state.message
    assert harness.last_flow_run().state.is_failed()


def test_default_run_names_are_generated_and_differ(harness: TestHarness) -> None:
    @flow
    def unnamed() -> None:
        return None

    unnamed()
    unnamed()
    names = {run.name for run in harness.flow_runs()}
    assert len(names) == 2
    assert all(name for name in names)


@pytest.mark.parametrize(
    "delay",
    [5, 2.5, [1, 10, 60], stratoflow.exponential_backoff(2)],
    ids=["int", "float", "list", "exponential_backoff"],
)
def test_retries_and_retry_delay_seconds_are_accepted(delay: Any) -> None:
    @flow(retries=3, retry_delay_seconds=delay)
    def retrying() -> None:
        return None

    assert retrying.options.retries == 3
    if isinstance(delay, list):
        assert retrying.options.retry_delay_seconds == [1.0, 10.0, 60.0]
    else:
        assert retrying.options.retry_delay_seconds == delay


def test_retry_delay_list_is_used_per_retry(harness: TestHarness) -> None:
    attempts: list[int] = []

    @flow(retries=3, retry_delay_seconds=[1, 10])
    def always_fails() -> None:
        attempts.append(1)
        raise RuntimeError("nope")

    state = always_fails(return_state=True)
    assert state.is_failed()
    assert len(attempts) == 4
    assert harness.clock.sleeps == [1.0, 10.0, 10.0]


@pytest.mark.parametrize("timeout", [1, 0.5, 300])
def test_timeout_seconds_accepts_positive_numbers(timeout: float) -> None:
    @flow(timeout_seconds=timeout)
    def limited() -> None:
        return None

    assert limited.options.timeout_seconds == timeout


def test_validate_parameters_false_keeps_raw_values(harness: TestHarness) -> None:
    @flow(validate_parameters=False)
    def raw(x: int) -> Any:
        return x

    assert raw.options.validate_parameters is False
    assert raw("5") == "5"


def test_task_runner_instance_is_kept_and_duplicated_per_run(harness: TestHarness) -> None:
    runner = ThreadPoolTaskRunner(max_workers=3)

    @flow(task_runner=runner)
    def with_runner() -> Any:
        ctx = flow_run_context.get()
        assert ctx is not None
        return ctx.task_runner

    assert with_runner.options.task_runner is runner
    used = with_runner()
    assert isinstance(used, ThreadPoolTaskRunner)
    assert used is not runner
    assert used.max_workers == 3


@pytest.mark.parametrize("runner_class", [ThreadPoolTaskRunner, ProcessPoolTaskRunner])
def test_task_runner_class_is_instantiated(runner_class: type) -> None:
    @flow(task_runner=runner_class)
    def with_class() -> None:
        return None

    assert isinstance(with_class.options.task_runner, runner_class)


def test_log_prints_option(harness: TestHarness) -> None:
    @flow(log_prints=True)
    def printing() -> None:
        print("captured line")

    assert printing.options.log_prints is True
    printing()
    assert "captured line" in harness.log_messages()


def test_persist_result_with_storage_path_and_serializer(
    harness: TestHarness, tmp_path: Path
) -> None:
    @flow(persist_result=True, result_storage=str(tmp_path), result_serializer="json")
    def persisted() -> dict[str, int]:
        return {"rows": 3}

    store = persisted.options.result_storage
    assert isinstance(store, LocalFileSystemResultStore)
    assert store.basepath == tmp_path
    assert persisted() == {"rows": 3}
    record = harness.last_flow_run().result_record
    assert record is not None
    assert record.serializer == "json"
    assert record.store == store
    assert record.load() == {"rows": 3}
    assert (tmp_path / record.key).exists()


def test_result_storage_accepts_a_store_and_cloudpickle(tmp_path: Path) -> None:
    store = LocalFileSystemResultStore(tmp_path)

    @flow(persist_result=True, result_storage=store, result_serializer="cloudpickle")
    def pickled() -> None:
        return None

    assert pickled.options.result_storage is store
    assert pickled.options.result_serializer == "cloudpickle"


def test_tags_are_stored_as_a_tuple(harness: TestHarness) -> None:
    @flow(tags=["etl", "nightly"])
    def tagged() -> None:
        return None

    assert tagged.options.tags == ("etl", "nightly")
    tagged()
    assert harness.last_flow_run().tags == ("etl", "nightly")


@pytest.mark.parametrize(
    "option", ["on_completion", "on_failure", "on_cancellation", "on_crashed", "on_running"]
)
def test_hook_options_accept_one_callable_or_a_list(option: str) -> None:
    def other_hook(flow_: Any, run: Any, state: Any) -> None:
        return None

    @flow(**{option: _noop_hook})
    def one() -> None:
        return None

    @flow(**{option: [_noop_hook, other_hook]})
    def several() -> None:
        return None

    assert getattr(one.options, option) == (_noop_hook,)
    assert getattr(several.options, option) == (_noop_hook, other_hook)


# with_options


def test_with_options_returns_a_changed_copy(harness: TestHarness) -> None:
    @flow(retries=1, tags=["a"])
    def original(x: int) -> int:
        return x + 1

    changed = original.with_options(name="copy", retries=4, timeout_seconds=10)
    assert changed is not original
    assert changed.name == "copy"
    assert changed.options.retries == 4
    assert changed.options.timeout_seconds == 10
    assert changed.options.tags == ("a",)  # kept from the original
    assert changed.fn is original.fn
    # The original is unchanged.
    assert original.name == "original"
    assert original.options.retries == 1
    assert original.options.timeout_seconds is None
    assert changed(1) == 2
    assert harness.last_flow_run().flow_name == "copy"


def test_with_options_without_a_name_keeps_the_default_name() -> None:
    @flow
    def some_flow() -> None:
        return None

    assert some_flow.with_options(retries=2).name == "some-flow"


def test_with_options_validates() -> None:
    @flow
    def valid() -> None:
        return None

    with pytest.raises(OptionError, match=r"retries=-2: .*Pass a whole number >= 0"):
        valid.with_options(retries=-2)
    with pytest.raises(OptionError, match="bogus: not an option of @flow"):
        valid.with_options(bogus=1)


# Invalid options


def _decorate(**options: Any) -> Flow[..., Any]:
    def my_flow() -> None:
        return None

    return flow(**options)(my_flow)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"retries": -1},
            "retries=-1: Input should be greater than or equal to 0. "
            "Pass a whole number >= 0, e.g. retries=3.",
        ),
        ({"retries": 1.5}, "retries=1.5: Input should be a valid integer. Pass a whole number"),
        ({"retries": "3"}, "retries='3': Input should be a valid integer."),
        (
            {"retry_delay_seconds": -5},
            "retry_delay_seconds=-5: Input should be greater than or equal to 0. Pass seconds "
            "(10), one delay per retry ([1, 10, 60]) or exponential_backoff(10).",
        ),
        (
            {"timeout_seconds": 0},
            "timeout_seconds=0: Input should be greater than 0. "
            "Pass a number of seconds > 0, e.g. timeout_seconds=300.",
        ),
        ({"timeout_seconds": -1}, "timeout_seconds=-1: Input should be greater than 0."),
        (
            {"tags": "etl"},
            "tags='etl': tags must be a list of strings, not the single string 'etl'. "
            "Pass a list of strings, e.g. tags=['etl', 'nightly'].",
        ),
        ({"tags": ["ok", 1]}, "tags=['ok', 1]: Input should be a valid string."),
        (
            {"task_runner": "threads"},
            "task_runner='threads': task_runner must be a TaskRunner, got str. "
            "Pass ThreadPoolTaskRunner() or ProcessPoolTaskRunner().",
        ),
        ({"task_runner": int}, "task_runner must be a TaskRunner, got type"),
        (
            {"result_serializer": "yaml"},
            "result_serializer='yaml': Input should be 'auto', 'json' or 'cloudpickle'. "
            "Use 'auto' (JSON when possible), 'json' or 'cloudpickle'.",
        ),
        (
            {"result_storage": 123},
            "result_storage=123: result_storage must be a ResultStore or a directory path, "
            "got int.",
        ),
        ({"persist_result": "maybe"}, "persist_result='maybe': Input should be a valid boolean"),
        ({"log_prints": "loud"}, "log_prints='loud': Input should be a valid boolean"),
        ({"flow_run_name": 5}, "flow_run_name=5: Input should be a valid string"),
        ({"version": 1}, "version=1: Input should be a valid string"),
        (
            {"on_completion": [_noop_hook, 1]},
            "on_completion=[<function _noop_hook",
        ),
        (
            {"on_failure": "notify"},
            "on_failure='notify': hooks must be callables, got 'notify'; "
            "pass a function hook(flow_or_task, run, state) or a list of them.",
        ),
        (
            {"on_running": 3},
            "on_running=3: hooks must be callables, got 3; pass a function",
        ),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else None,
)
def test_invalid_option_names_the_option_and_the_fix(
    options: dict[str, Any], expected: str
) -> None:
    with pytest.raises(OptionError) as info:
        _decorate(**options)
    message = str(info.value)
    assert message.startswith("Invalid options for @flow 'my_flow':\n  - ")
    assert expected in message


def test_invalid_hook_inside_a_list_is_named() -> None:
    with pytest.raises(OptionError, match="hooks must be callables, got 1; pass a function"):
        _decorate(on_cancellation=[_noop_hook, 1])


@pytest.mark.parametrize("option", ["retry", "cache_policy", "task_run_name"])
def test_unknown_option_lists_the_valid_ones(option: str) -> None:
    with pytest.raises(OptionError) as info:
        _decorate(**{option: 3})
    message = str(info.value)
    assert f"{option}: not an option of @flow. Valid options: " in message
    for valid in ("retries", "flow_run_name", "timeout_seconds", "task_runner", "on_running"):
        assert valid in message


def test_every_problem_is_listed() -> None:
    with pytest.raises(OptionError) as info:
        _decorate(retries=-1, timeout_seconds=0, tags="x")
    lines = str(info.value).splitlines()
    assert lines[0] == "Invalid options for @flow 'my_flow':"
    assert sorted(line.split(":")[0] for line in lines[1:]) == [
        "  - retries=-1",
        "  - tags='x'",
        "  - timeout_seconds=0",
    ]


def test_async_generator_is_rejected_with_a_fix() -> None:
    # async def flows are supported (tests/unit/test_async_flows.py); generators are not.
    with pytest.raises(OptionError, match=r"async generator; .*Return a list instead"):

        @flow
        async def async_flow() -> Any:
            yield 1


def test_decorating_a_non_callable_is_rejected() -> None:
    with pytest.raises(OptionError, match="@flow decorates a function, got int"):
        flow(5)  # type: ignore[call-overload]


def test_option_errors_are_value_errors() -> None:
    # OptionError subclasses ValueError, so generic handlers still catch it.
    with pytest.raises(ValueError):
        _decorate(retries=-1)


def test_task_used_in_flow_with_options_still_runs(harness: TestHarness) -> None:
    @task
    def one() -> int:
        return 1

    @flow(retries=1, timeout_seconds=30, tags=["t"], log_prints=False)
    def configured() -> int:
        return one() + one.submit().result()

    assert configured() == 2
    run = harness.last_flow_run()
    assert run.state.is_completed()
    assert len(harness.task_runs(run.id)) == 2
