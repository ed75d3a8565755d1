"""`@task` options: every option is accepted, bad ones fail at decoration time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from stratoflow import Task, exponential_backoff, flow, task
from stratoflow.cache_policies import INPUTS, NONE, TASK_SOURCE, CacheKeyFnPolicy
from stratoflow.exceptions import OptionError
from stratoflow.results import LocalFileSystemResultStore
from stratoflow.tasks import task_input_hash
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


def add(x: int, y: int = 1) -> int:
    return x + y


def on_done(task: Any, task_run: Any, state: Any) -> None:
    pass


def on_fail(task: Any, task_run: Any, state: Any) -> None:
    pass


def never_retry(task: Any, task_run: Any, state: Any) -> bool:
    return False


def option_error(**options: Any) -> str:
    with pytest.raises(OptionError) as info:
        task(**options)(add)
    return str(info.value)


# Decoration forms


def test_bare_decorator_makes_a_task_with_default_options() -> None:
    @task
    def double(x: int) -> int:
        return x * 2

    assert isinstance(double, Task)
    assert double.name == "double"
    assert double.retries == 0
    assert double.tags == ()
    assert double.timeout_seconds is None
    assert double.cache_policy is NONE


def test_decorator_with_empty_parentheses() -> None:
    @task()
    def double(x: int) -> int:
        return x * 2

    assert isinstance(double, Task)
    assert double.name == "double"


def test_decorator_with_options() -> None:
    @task(name="doubler", retries=2)
    def double(x: int) -> int:
        return x * 2

    assert double.name == "doubler"
    assert double.retries == 2


def test_task_called_as_a_function_on_a_function() -> None:
    made = task(add, retries=1)
    assert isinstance(made, Task)
    assert made.retries == 1


def test_fn_is_the_plain_function() -> None:
    made = task(add)
    assert made.fn is add
    assert made.fn(2, 3) == 5
    assert not isinstance(made.fn, Task)


def test_task_keeps_the_function_metadata() -> None:
    def documented(x: int) -> int:
        """Docs here."""
        return x

    made = task(documented)
    assert made.__doc__ == "Docs here."
    assert made.__wrapped__ is documented
    assert made.__module__ == __name__


def test_task_repr_names_the_task() -> None:
    assert "add" in repr(task(add))


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_option"):
        _ = task(add).no_such_option


# Every option is accepted


def test_identity_options() -> None:
    made = task(name="adder", description="adds", tags=["etl", "math"], version="1.2")(add)
    assert made.name == "adder"
    assert made.description == "adds"
    assert made.tags == ("etl", "math")
    assert made.version == "1.2"


def test_tags_accept_any_iterable_of_strings() -> None:
    assert task(tags=("a", "b"))(add).tags == ("a", "b")
    assert task(tags=None)(add).tags == ()


def test_task_run_name_template() -> None:
    assert task(task_run_name="add-{x}")(add).task_run_name == "add-{x}"


def test_task_run_name_callable() -> None:
    def namer() -> str:
        return "custom"

    assert task(task_run_name=namer)(add).task_run_name is namer


def test_retry_options_with_a_number() -> None:
    made = task(
        retries=3,
        retry_delay_seconds=10,
        retry_jitter_factor=0.5,
        retry_condition_fn=never_retry,
    )(add)
    assert made.retries == 3
    assert made.retry_delay_seconds == 10
    assert made.retry_jitter_factor == 0.5
    assert made.retry_condition_fn is never_retry


def test_retry_delay_as_a_list() -> None:
    assert task(retries=3, retry_delay_seconds=[1, 10, 60])(add).retry_delay_seconds == [
        1,
        10,
        60,
    ]


def test_retry_delay_as_exponential_backoff() -> None:
    backoff = exponential_backoff(10)
    made = task(retries=3, retry_delay_seconds=backoff)(add)
    assert made.retry_delay_seconds is backoff


def test_timeout_seconds() -> None:
    assert task(timeout_seconds=1.5)(add).timeout_seconds == 1.5


def test_cache_policy() -> None:
    policy = INPUTS + TASK_SOURCE
    made = task(cache_policy=policy)(add)
    assert made.cache_policy is policy
    assert made.options.cache_policy is policy


def test_cache_key_fn_becomes_the_cache_policy() -> None:
    made = task(cache_key_fn=task_input_hash)(add)
    assert made.cache_key_fn is task_input_hash
    assert isinstance(made.cache_policy, CacheKeyFnPolicy)
    assert made.cache_policy.cache_key_fn is task_input_hash


def test_cache_expiration_and_refresh_cache() -> None:
    made = task(cache_policy=INPUTS, cache_expiration=timedelta(hours=1), refresh_cache=True)(add)
    assert made.cache_expiration == timedelta(hours=1)
    assert made.refresh_cache is True


def test_persist_result() -> None:
    assert task(persist_result=True)(add).persist_result is True
    assert task(persist_result=False)(add).persist_result is False
    assert task(add).persist_result is None


def test_result_storage_as_a_path_string(tmp_path: Path) -> None:
    made = task(result_storage=str(tmp_path))(add)
    assert made.result_storage == LocalFileSystemResultStore(tmp_path)


def test_result_storage_as_a_path_object(tmp_path: Path) -> None:
    made = task(result_storage=tmp_path)(add)
    assert isinstance(made.result_storage, LocalFileSystemResultStore)
    assert made.result_storage.basepath == tmp_path


def test_result_storage_as_a_result_store(tmp_path: Path) -> None:
    store = LocalFileSystemResultStore(tmp_path)
    assert task(result_storage=store)(add).result_storage is store


@pytest.mark.parametrize("serializer", ["auto", "json", "cloudpickle"])
def test_result_serializer(serializer: str) -> None:
    assert task(result_serializer=serializer)(add).result_serializer == serializer


def test_result_storage_key() -> None:
    made = task(result_storage_key="out-{parameters[x]}")(add)
    assert made.result_storage_key == "out-{parameters[x]}"


def test_log_prints() -> None:
    assert task(log_prints=True)(add).log_prints is True


def test_hooks_accept_a_list() -> None:
    made = task(on_completion=[on_done], on_failure=[on_fail, on_done])(add)
    assert made.on_completion_hooks == [on_done]
    assert made.on_failure_hooks == [on_fail, on_done]


def test_hooks_accept_a_single_callable() -> None:
    made = task(on_completion=on_done)(add)
    assert made.on_completion_hooks == [on_done]


def test_all_options_together(tmp_path: Path, harness: TestHarness) -> None:
    made = task(
        name="everything",
        description="d",
        tags=["t"],
        version="1",
        task_run_name="everything-{x}",
        retries=1,
        retry_delay_seconds=[1],
        retry_jitter_factor=0.1,
        retry_condition_fn=never_retry,
        timeout_seconds=30,
        cache_policy=INPUTS,
        cache_expiration=timedelta(minutes=5),
        refresh_cache=False,
        persist_result=True,
        result_storage=str(tmp_path),
        result_serializer="json",
        result_storage_key="k-{parameters[x]}",
        log_prints=False,
        on_completion=[on_done],
        on_failure=[on_fail],
    )(add)

    @flow
    def pipeline() -> int:
        return made(4)

    assert pipeline() == 5
    (run,) = harness.task_runs()
    assert run.name == "everything-4"
    assert run.tags == ("t",)
    assert (tmp_path / "k-4").read_bytes() == b"5"


# with_options


def test_with_options_returns_a_new_task_and_leaves_the_original_unchanged() -> None:
    original = task(name="orig", retries=1, tags=["a"])(add)
    changed = original.with_options(retries=5, tags=["b"])

    assert changed is not original
    assert isinstance(changed, Task)
    assert changed.retries == 5
    assert changed.tags == ("b",)
    assert changed.name == "orig"
    assert changed.fn is add
    assert original.retries == 1
    assert original.tags == ("a",)


def test_with_options_keeps_the_options_it_does_not_change() -> None:
    original = task(retries=2, timeout_seconds=9, on_failure=[on_fail])(add)
    changed = original.with_options(description="new")
    assert changed.retries == 2
    assert changed.timeout_seconds == 9
    assert changed.on_failure_hooks == [on_fail]
    assert changed.description == "new"
    assert original.description is None


def test_with_options_can_rename_the_task() -> None:
    original = task(add)
    renamed = original.with_options(name="plus")
    assert renamed.name == "plus"
    assert original.name == "add"
    assert renamed.task_key != original.task_key


def test_with_options_can_change_the_cache_policy() -> None:
    original = task(cache_policy=INPUTS)(add)
    changed = original.with_options(cache_policy=NONE)
    assert changed.cache_policy is NONE
    assert original.cache_policy is INPUTS


def test_with_options_validates() -> None:
    with pytest.raises(OptionError, match=r"retries=-2"):
        task(add).with_options(retries=-2)


def test_with_options_rejects_turning_off_persistence_of_a_cached_task() -> None:
    with pytest.raises(OptionError, match=r"persist_result=False"):
        task(cache_policy=INPUTS)(add).with_options(persist_result=False)


def test_with_options_result_runs(harness: TestHarness) -> None:
    calls: list[int] = []

    @task(retries=0)
    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("again")
        return "ok"

    @flow
    def pipeline() -> str:
        return flaky.with_options(retries=2)()

    assert pipeline() == "ok"
    assert len(calls) == 3


# Invalid options: OptionError at decoration time, naming the option and the fix


def test_option_error_is_a_value_error() -> None:
    assert issubclass(OptionError, ValueError)


def test_negative_retries() -> None:
    message = option_error(retries=-1)
    assert "@task 'add'" in message
    assert "retries=-1" in message
    assert "greater than or equal to 0" in message
    assert "Pass a whole number >= 0, e.g. retries=3." in message


@pytest.mark.parametrize("value", ["3", 1.5, True, None])
def test_retries_must_be_an_integer(value: Any) -> None:
    message = option_error(retries=value)
    assert f"retries={value!r}" in message
    assert "valid integer" in message
    assert "Pass a whole number >= 0" in message


@pytest.mark.parametrize("value", [0, -1])
def test_timeout_must_be_positive(value: float) -> None:
    message = option_error(timeout_seconds=value)
    assert f"timeout_seconds={value}" in message
    assert "greater than 0" in message
    assert "e.g. timeout_seconds=300" in message


def test_tags_as_a_single_string() -> None:
    message = option_error(tags="etl")
    assert "tags='etl'" in message
    assert "not the single string 'etl'" in message
    assert "tags=['etl', 'nightly']" in message


def test_tags_must_be_strings() -> None:
    message = option_error(tags=["ok", 1])
    assert "tags=['ok', 1]" in message
    assert "valid string" in message


def test_unknown_option_lists_the_valid_ones() -> None:
    message = option_error(retires=3)
    assert "retires: not an option of @task" in message
    assert "Valid options:" in message
    assert "retries" in message.split("Valid options:")[1]


def test_several_problems_are_all_listed() -> None:
    message = option_error(retries=-1, timeout_seconds=0)
    assert "retries=-1" in message
    assert "timeout_seconds=0" in message


def test_cache_policy_together_with_cache_key_fn() -> None:
    message = option_error(cache_policy=INPUTS, cache_key_fn=task_input_hash)
    assert "cache_policy and cache_key_fn both given" in message
    assert "use one of them" in message


@pytest.mark.parametrize("options", [{"cache_policy": INPUTS}, {"cache_key_fn": task_input_hash}])
def test_cache_policy_with_persist_result_false(options: dict[str, Any]) -> None:
    message = option_error(persist_result=False, **options)
    assert "cache policy but persist_result=False" in message
    assert "Drop persist_result=False or the cache policy" in message


def test_no_cache_policy_with_persist_result_false_is_fine() -> None:
    assert task(cache_policy=NONE, persist_result=False)(add).persist_result is False


def test_async_generator_is_rejected() -> None:
    # async def tasks are supported (tests/unit/test_async_tasks.py); generators are not.
    async def fetch() -> Any:
        yield 1

    with pytest.raises(OptionError) as info:
        task(fetch)
    message = str(info.value)
    assert "'fetch' is an async generator" in message
    assert "Return a list instead" in message


def test_async_generator_is_rejected_with_options() -> None:
    async def fetch() -> Any:
        yield 1

    with pytest.raises(OptionError, match="async generator"):
        task(retries=1)(fetch)


def test_decorating_a_non_callable() -> None:
    with pytest.raises(OptionError, match=r"@task decorates a function, got int"):
        task()(42)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"retry_delay_seconds": -1}, "retry_delay_seconds=-1"),
        ({"retry_delay_seconds": "soon"}, "retry_delay_seconds='soon'"),
        ({"retry_jitter_factor": -0.5}, "retry_jitter_factor=-0.5"),
        ({"cache_expiration": "soon"}, "cache_expiration='soon'"),
        ({"cache_policy": "inputs"}, "cache_policy='inputs'"),
        ({"result_serializer": "yaml"}, "result_serializer='yaml'"),
        ({"result_storage": 42}, "result_storage=42"),
        ({"on_completion": [1]}, "on_completion=[1]"),
        ({"on_failure": "not a hook"}, "on_failure='not a hook'"),
        ({"refresh_cache": "maybe"}, "refresh_cache='maybe'"),
    ],
)
def test_other_invalid_options_name_the_option(options: dict[str, Any], expected: str) -> None:
    message = option_error(**options)
    assert message.startswith("Invalid options for @task 'add'")
    assert expected in message


@pytest.mark.parametrize(
    ("options", "hint"),
    [
        ({"retry_delay_seconds": -1}, "exponential_backoff(10)"),
        ({"retry_jitter_factor": -1}, "retry_jitter_factor=0.5"),
        ({"cache_expiration": "soon"}, "timedelta(hours=1)"),
        ({"cache_policy": "inputs"}, "INPUTS + TASK_SOURCE"),
        ({"result_serializer": "yaml"}, "'auto'"),
        ({"result_storage": 42}, "result_storage='./results'"),
    ],
)
def test_invalid_options_say_how_to_fix_them(options: dict[str, Any], hint: str) -> None:
    assert hint in option_error(**options)


def test_error_message_shows_each_problem_on_its_own_line() -> None:
    message = option_error(retries=-1, tags="x")
    lines = message.splitlines()
    assert lines[0] == "Invalid options for @task 'add':"
    assert sum(1 for line in lines if re.match(r"^  - ", line)) == 2


def test_callable_object_is_named_after_its_class(harness: TestHarness) -> None:
    class Doubler:
        def __call__(self, x: int) -> int:
            return x * 2

    made = task(Doubler())
    assert made.name == "Doubler"
    assert "Doubler" in repr(made)

    @flow
    def pipeline() -> int:
        return made(21)

    assert pipeline() == 42
    assert harness.task_runs()[0].name == "Doubler-0"
