"""`@task` and `@flow` on methods, classmethods and staticmethods, and hooks registered
with decorators (`@my_task.on_failure`), as Prefect 3 allows them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest

from stratoflow import Flow, Task, flow, task
from stratoflow.runtime import task_run as runtime_task_run
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


class Counter:
    def __init__(self, start: int) -> None:
        self.start = start

    @task
    def add(self, x: int) -> int:
        return self.start + x

    @task
    def parameters_seen(self, x: int) -> dict[str, Any]:
        return dict(runtime_task_run.parameters)

    @flow
    def run(self, x: int) -> int:
        return self.add(x)

    @flow
    @classmethod
    def class_flow(cls) -> str:
        return cls.__name__

    @classmethod
    @flow
    def class_flow_other_order(cls) -> str:
        return cls.__name__

    @flow
    @staticmethod
    def static_flow() -> str:
        return "static"

    @staticmethod
    @flow
    def static_flow_other_order() -> str:
        return "static"

    @task
    @classmethod
    def class_task(cls, x: int) -> str:
        return f"{cls.__name__}-{x}"

    @task
    @staticmethod
    def static_task(x: int) -> int:
        return x * 2

    @task
    def items(self, value: int) -> int:
        return self.start + value


def test_a_task_method_binds_self(harness: TestHarness) -> None:
    counter = Counter(10)

    @flow
    def pipeline() -> tuple[int, int, int]:
        return counter.add(1), Counter.add(counter, 2), counter.add.submit(3).result()

    assert pipeline() == (11, 12, 13)
    assert isinstance(counter.add, Task)
    assert counter.add.ismethod


def test_a_task_method_outside_a_flow(harness: TestHarness) -> None:
    assert Counter(1).add(2) == 3


def test_a_method_can_be_mapped_over_its_arguments(harness: TestHarness) -> None:
    counter = Counter(100)

    @flow
    def pipeline() -> list[int]:
        return counter.items.map([1, 2, 3]).result()

    assert pipeline() == [101, 102, 103]


def test_self_is_in_the_task_run_context_parameters_as_in_prefect(harness: TestHarness) -> None:
    counter = Counter(0)
    seen = counter.parameters_seen(4)
    assert seen["x"] == 4
    assert seen["self"] is counter


def test_a_flow_method_binds_self_and_does_not_record_it(harness: TestHarness) -> None:
    assert Counter(5).run(1) == 6
    run = harness.last_flow_run()
    assert run.parameters == {"x": 1}
    assert isinstance(Counter(1).run, Flow)


def test_flow_classmethods_and_staticmethods(harness: TestHarness) -> None:
    assert Counter.class_flow() == "Counter"
    assert isinstance(Counter.class_flow, Flow)
    assert Counter.class_flow_other_order() == "Counter"
    assert Counter.static_flow() == "static"
    assert Counter.static_flow_other_order() == "static"
    assert Counter(1).static_flow() == "static"
    assert Counter(1).class_flow() == "Counter"


def test_task_classmethods_and_staticmethods(harness: TestHarness) -> None:
    @flow
    def pipeline() -> tuple[str, int, int]:
        return Counter.class_task(1), Counter.static_task(2), Counter(0).static_task(3)

    assert pipeline() == ("Counter-1", 4, 6)


def test_an_async_flow_method(harness: TestHarness) -> None:
    class Service:
        def __init__(self, base: int) -> None:
            self.base = base

        @flow
        async def compute(self, x: int) -> int:
            return self.base + x

    assert asyncio.run(Service(2).compute(3)) == 5


def test_a_flow_method_on_a_pydantic_model(harness: TestHarness) -> None:
    class Settings(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(ignored_types=(Flow,))
        x: int = 5

        @flow
        def instance_method(self) -> int:
            return self.x

    assert Settings().instance_method() == 5


# Hooks registered with decorators


def test_task_hook_decorators_register_and_return_the_hook(harness: TestHarness) -> None:
    seen: list[str] = []

    @task
    def maybe(fail: bool) -> int:
        if fail:
            raise ValueError("no")
        return 1

    @maybe.on_completion
    def completed(task: Task[..., Any], run: Any, state: Any) -> None:
        seen.append(f"completed:{state.name}")

    @maybe.on_failure
    def failed(task: Task[..., Any], run: Any, state: Any) -> None:
        seen.append(f"failed:{state.name}")

    @maybe.on_running
    def running(task: Task[..., Any], run: Any, state: Any) -> None:
        seen.append(f"running:{state.name}")

    assert callable(completed) and completed.__name__ == "completed"
    assert maybe.on_completion_hooks == [completed]
    assert maybe.on_failure_hooks == [failed]
    assert maybe.on_running_hooks == [running]
    maybe(False)
    with pytest.raises(ValueError):
        maybe(True)
    assert seen == ["running:Running", "completed:Completed", "running:Running", "failed:Failed"]


def test_flow_hook_decorators(harness: TestHarness) -> None:
    seen: list[str] = []

    @flow
    def pipeline(fail: bool) -> None:
        if fail:
            raise ValueError("no")

    @pipeline.on_running
    def running(flow: Flow[..., Any], run: Any, state: Any) -> None:
        seen.append("running")

    @pipeline.on_completion
    def completed(flow: Flow[..., Any], run: Any, state: Any) -> None:
        seen.append("completed")

    @pipeline.on_failure
    def failed(flow: Flow[..., Any], run: Any, state: Any) -> None:
        seen.append("failed")

    @pipeline.on_cancellation
    def cancelled(flow: Flow[..., Any], run: Any, state: Any) -> None:
        seen.append("cancelled")

    @pipeline.on_crashed
    def crashed(flow: Flow[..., Any], run: Any, state: Any) -> None:
        seen.append("crashed")

    assert pipeline.on_cancellation_hooks == [cancelled]
    assert pipeline.on_crashed_hooks == [crashed]
    pipeline(False)
    pipeline(True, return_state=True)
    assert seen == ["running", "completed", "running", "failed"]


def test_a_hook_decorator_rejects_a_non_callable() -> None:
    @task
    def noop() -> None: ...

    with pytest.raises(TypeError, match="callables"):
        noop.on_completion(42)  # type: ignore[arg-type]


def test_hooks_log_prefects_lines(harness: TestHarness) -> None:
    def announce(task: Any, run: Any, state: Any) -> None: ...

    def broken(task: Any, run: Any, state: Any) -> None:
        raise RuntimeError("hook broke")

    @task(on_completion=[announce, broken])
    def noop() -> None: ...

    @flow
    def pipeline() -> None:
        noop()

    pipeline()
    messages = harness.log_messages()
    assert "Running hook 'announce' in response to entering state 'Completed'" in messages
    assert "Hook 'announce' finished running successfully" in messages
    assert any(
        m.startswith("An error was encountered while running hook 'broken'") for m in messages
    )
