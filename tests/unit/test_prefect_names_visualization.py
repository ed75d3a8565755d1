"""Prefect 3's `flow.visualize()` (Graphviz) and `flow.generate_mermaid_graph()`
(prefect.utilities.visualization)."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from stratoflow import flow, task
from stratoflow.tasks import Task
from stratoflow.utilities.visualization import (
    FlowVisualizationError,
    GraphvizImportError,
    VisualizationUnsupportedError,
    build_mermaid_dependencies,
    get_task_viz_tracker,
    mermaid_graph_of_flow,
    track_viz_task,
    tracking,
    visualize_flow,
)

HAVE_GRAPHVIZ = importlib.util.find_spec("graphviz") is not None


def test_recorded_calls_make_a_graph_with_numbered_nodes() -> None:
    assert get_task_viz_tracker() is None
    with tracking() as tracker:
        raw = track_viz_task(False, "extract", {})
        rows = track_viz_task(False, "transform", {"data": raw}, viz_return_value=["r1", "r2"])
        track_viz_task(False, "load", {"rows": rows})
        track_viz_task(False, "load", {"rows": rows})
    assert get_task_viz_tracker() is None
    assert [t.name for t in tracker.tasks] == ["extract-0", "transform-0", "load-0", "load-1"]
    assert build_mermaid_dependencies(tracker) == "\n".join(
        [
            "flowchart TD",
            '    extract_0["extract-0"]',
            '    transform_0["transform-0"]',
            '    load_0["load-0"]',
            '    load_1["load-1"]',
            "    extract_0 --> transform_0",
            "    transform_0 --> load_0",
            "    transform_0 --> load_1",
        ]
    )


def test_an_async_task_call_records_and_returns_a_coroutine() -> None:
    with tracking() as tracker:
        returned = asyncio.run(track_viz_task(True, "fetch", {}, viz_return_value="page"))
    assert returned == "page"
    assert [t.name for t in tracker.tasks] == ["fetch-0"]


@pytest.mark.skipif(HAVE_GRAPHVIZ, reason="graphviz is installed here")
def test_visualize_without_graphviz_says_so_before_running_the_flow() -> None:
    ran: list[bool] = []

    @flow
    def pipeline() -> None:
        ran.append(True)

    with pytest.raises(GraphvizImportError, match="generate_mermaid_graph"):
        visualize_flow(pipeline)
    assert ran == []


def test_without_task_recording_the_flow_is_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[bool] = []

    @task
    def side_effect() -> None:
        called.append(True)

    @flow
    def pipeline() -> None:
        side_effect()

    monkeypatch.setattr(Task, "records_calls_while_visualizing", False)
    with pytest.raises(VisualizationUnsupportedError, match="recorded instead of run"):
        mermaid_graph_of_flow(pipeline)
    assert called == []


def test_submit_and_map_are_not_supported_while_visualizing() -> None:
    @task
    def step(n: int) -> int:
        return n

    @flow
    def submits() -> None:
        step.submit(1)

    @flow
    def maps() -> None:
        step.map([1, 2])

    with pytest.raises(VisualizationUnsupportedError, match="submit"):
        submits.generate_mermaid_graph()
    with pytest.raises(VisualizationUnsupportedError, match="map"):
        maps.generate_mermaid_graph()


def test_viz_return_value_links_the_calls_that_use_it() -> None:
    @task(viz_return_value=[1, 2, 3])
    def extract() -> list[int]:
        raise AssertionError("not run while visualizing")

    @task
    def total(rows: list[int]) -> int:
        raise AssertionError("not run while visualizing")

    @flow
    def etl() -> None:
        rows = extract()
        total(rows[:])  # a new list: not linked
        total(rows)

    graph = etl.generate_mermaid_graph()
    assert "extract_0 --> total_1" in graph
    assert "extract_0 --> total_0" not in graph


def test_code_that_uses_a_placeholder_result_gets_prefects_advice() -> None:
    @flow
    def pipeline() -> int:
        with tracking():
            value = track_viz_task(False, "count", {})
        return value + 1  # type: ignore[no-any-return, operator]

    with pytest.raises(FlowVisualizationError, match="viz_return_value"):
        mermaid_graph_of_flow(pipeline)


def test_the_mermaid_graph_of_a_flow() -> None:
    @task
    def extract() -> list[int]:
        raise AssertionError("not run while visualizing")

    @task
    def load(rows: list[int]) -> None:
        raise AssertionError("not run while visualizing")

    @flow
    def etl() -> None:
        load(extract())

    graph = mermaid_graph_of_flow(etl)
    assert "extract_0 --> load_0" in graph
    assert hasattr(etl, "visualize") and hasattr(etl, "generate_mermaid_graph")
