"""`flow.visualize()` and `flow.generate_mermaid_graph()` (Prefect's
`prefect.utilities.visualization`).

Both call the flow's function with task calls *recorded* instead of run: each call
becomes a node, named `<task>-<n>`, with an edge from every task whose return value it
received. Code in the flow that is not a task does run. A task call returns what the
task's `viz_return_value` says (else a placeholder), so a flow that computes with a
task's result needs one, as in Prefect.

`visualize()` draws the graph with Graphviz, as Prefect does: it needs the `graphviz`
Python package and the Graphviz `dot` program, and raises GraphvizImportError or
GraphvizExecutableNotFoundError without them. `generate_mermaid_graph()` needs neither:
it returns a Mermaid `flowchart TD` text.
"""

from __future__ import annotations

import asyncio
import importlib
import re
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FlowVisualizationError",
    "GraphvizExecutableNotFoundError",
    "GraphvizImportError",
    "TaskVizTracker",
    "VisualizationUnsupportedError",
    "VizTask",
    "build_mermaid_dependencies",
    "build_task_dependencies",
    "get_task_viz_tracker",
    "mermaid_graph_of_flow",
    "track_viz_task",
    "visualize_flow",
    "visualize_task_dependencies",
]


class FlowVisualizationError(Exception):
    pass


class VisualizationUnsupportedError(Exception):
    pass


class GraphvizImportError(ImportError):
    pass


class GraphvizExecutableNotFoundError(Exception):
    pass


_GRAPHVIZ_MISSING = (
    "flow.visualize() draws the graph with Graphviz: install the `graphviz` Python package "
    "(pip install graphviz) and the Graphviz program (https://graphviz.org/download/). "
    "flow.generate_mermaid_graph() needs neither and returns the graph as Mermaid text."
)
_DOT_MISSING = (
    "It appears you do not have Graphviz installed, or it is not on your PATH. Install it "
    "from https://graphviz.org/download/: the `graphviz` Python package is not enough."
)
_USES_RESULTS = (
    "It's possible you are trying to visualize a flow that contains code that directly "
    "interacts with the result of a task inside of the flow. Give the task a value to "
    "return while visualizing: `@task(viz_return_value=[1, 2, 3])`."
)


@dataclass(eq=False)
class VizTask:
    name: str
    upstream_tasks: list[VizTask] = field(default_factory=list)


@dataclass
class TaskVizTracker:
    """The task calls recorded while a flow's function runs for a visualization."""

    tasks: list[VizTask] = field(default_factory=list)
    _counts: dict[str, int] = field(default_factory=dict)
    _by_value: dict[int, VizTask] = field(default_factory=dict)
    _kept: list[Any] = field(default_factory=list)

    def add_task(self, task: VizTask) -> None:
        count = self._counts.get(task.name, 0)
        self._counts[task.name] = count + 1
        task.name = f"{task.name}-{count}"
        self.tasks.append(task)

    def link_viz_return_value_to_viz_task(self, value: Any, task: VizTask) -> None:
        """Remember which task returned `value`, to draw an edge where it is passed on.
        Values Python shares (None, booleans, small ints) cannot tell tasks apart."""
        if (
            value is None
            or isinstance(value, bool)
            or (isinstance(value, int) and -5 <= value <= 256)
        ):
            return
        self._kept.append(value)  # keeps its id() from being reused while tracking
        self._by_value[id(value)] = task

    def task_returning(self, value: Any) -> VizTask | None:
        if isinstance(value, VizTask):
            return value
        return self._by_value.get(id(value))


_tracker: ContextVar[TaskVizTracker | None] = ContextVar("stratoflow_viz_tracker", default=None)


def get_task_viz_tracker() -> TaskVizTracker | None:
    """The tracker of the visualization in progress; task calls record, not run, then."""
    return _tracker.get()


@contextmanager
def tracking() -> Iterator[TaskVizTracker]:
    tracker = TaskVizTracker()
    token = _tracker.set(tracker)
    try:
        yield tracker
    finally:
        _tracker.reset(token)


def track_viz_task(
    is_async: bool,
    task_name: str,
    parameters: dict[str, Any],
    viz_return_value: Any = None,
) -> Any:
    """Record a task call; the value the call returns (a coroutine for an async task)."""
    result = _record(task_name, parameters, viz_return_value)
    if is_async:
        return _returning(result)
    return result


async def _returning(value: Any) -> Any:
    return value


def _record(task_name: str, parameters: dict[str, Any], viz_return_value: Any) -> Any:
    tracker = get_task_viz_tracker()
    if tracker is None:
        raise VisualizationUnsupportedError("No visualization is in progress.")
    upstream = [
        found
        for value in parameters.values()
        if (found := tracker.task_returning(value)) is not None
    ]
    task = VizTask(task_name, upstream)
    tracker.add_task(task)
    if viz_return_value is not None:
        tracker.link_viz_return_value_to_viz_task(viz_return_value, task)
        return viz_return_value
    return task


# Drawing


def build_mermaid_dependencies(tracker: TaskVizTracker) -> str:
    """The recorded tasks and their dependencies as a Mermaid `flowchart TD`."""
    lines = ["flowchart TD"]
    ids = {id(task): re.sub(r"\W", "_", task.name) for task in tracker.tasks}
    for task in tracker.tasks:
        label = task.name.replace('"', "'")
        lines.append(f'    {ids[id(task)]}["{label}"]')
    for task in tracker.tasks:
        for upstream in task.upstream_tasks:
            lines.append(f"    {ids[id(upstream)]} --> {ids[id(task)]}")
    return "\n".join(lines)


def _graphviz() -> Any:
    try:
        return importlib.import_module("graphviz")
    except ImportError as exc:
        raise GraphvizImportError(_GRAPHVIZ_MISSING) from exc


def build_task_dependencies(tracker: TaskVizTracker) -> Any:
    """A `graphviz.Digraph` of the recorded tasks; GraphvizImportError without graphviz."""
    graph = _graphviz().Digraph()
    for task in tracker.tasks:
        graph.node(task.name)
        for upstream in task.upstream_tasks:
            graph.edge(upstream.name, task.name)
    return graph


def visualize_task_dependencies(graph: Any, flow_run_name: str) -> None:
    """Render the graph to `<flow_run_name>.png` and open it (as Prefect does)."""
    graphviz = _graphviz()
    try:
        graph.render(filename=flow_run_name, view=True, format="png", cleanup=True)
    except graphviz.backend.ExecutableNotFound as exc:
        raise GraphvizExecutableNotFoundError(_DOT_MISSING) from exc


# The flow methods


def _require_task_recording() -> None:
    """Refuse to visualize when task calls would run instead of being recorded.

    `stratoflow.tasks` is looked up when needed because its `Task.__call__` imports this
    module (to record calls); a Task that does so says it with
    `records_calls_while_visualizing = True`.
    """
    tasks = importlib.import_module("stratoflow.tasks")
    if not getattr(tasks.Task, "records_calls_while_visualizing", False):
        raise VisualizationUnsupportedError(
            "Visualizing a flow needs task calls to be recorded instead of run, and this "
            "version's Task runs them: the flow's tasks were not called."
        )


def _record_flow(flow: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> TaskVizTracker:
    _require_task_recording()
    with tracking() as tracker:
        try:
            called = flow.fn(*args, **kwargs)
            if asyncio.iscoroutine(called):
                _run_coroutine(called)
        except (GraphvizImportError, VisualizationUnsupportedError):
            raise
        except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
            # What code that computes with a placeholder instead of a task's result raises.
            raise FlowVisualizationError(f"{type(exc).__name__}: {exc}\n{_USES_RESULTS}") from exc
    return tracker


def _run_coroutine(coroutine: Coroutine[Any, Any, Any]) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    coroutine.close()
    raise VisualizationUnsupportedError(
        "An async flow can be visualized from synchronous code only (not inside a running "
        "event loop)."
    )


def visualize_flow(flow: Any, *args: Any, **kwargs: Any) -> None:
    """`flow.visualize(*args, **kwargs)`: draw the flow's task graph with Graphviz."""
    _graphviz()  # fail before running any of the flow's code
    tracker = _record_flow(flow, args, kwargs)
    visualize_task_dependencies(build_task_dependencies(tracker), flow.name)


def mermaid_graph_of_flow(flow: Any, *args: Any, **kwargs: Any) -> str:
    """`flow.generate_mermaid_graph(*args, **kwargs)`: the task graph as Mermaid text."""
    return build_mermaid_dependencies(_record_flow(flow, args, kwargs))
