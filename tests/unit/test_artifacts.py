"""`stratoflow.artifacts` on the memory backend: Prefect 3's helpers, keys, versions,
links to runs and progress updates. No I/O: the harness's memory backend and fake clock."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from uuid import UUID

import pytest

from stratoflow import flow, task
from stratoflow.artifacts import (
    Artifact,
    ImageArtifact,
    LinkArtifact,
    MarkdownArtifact,
    ProgressArtifact,
    TableArtifact,
    acreate_markdown_artifact,
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    list_artifacts,
    read_artifact,
    update_progress_artifact,
)
from stratoflow.clock import FakeClock
from stratoflow.exceptions import ObjectNotFound
from stratoflow.records import DATA_MAX_BYTES, InvalidArtifactError
from stratoflow.testing import TestHarness, stratoflow_test_harness
from stratoflow.variables import Variable


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


def _stored(artifact_id: UUID):  # type: ignore[no-untyped-def]
    return read_artifact(str(artifact_id))[0]


def test_markdown_artifact(harness: TestHarness) -> None:
    artifact_id = create_markdown_artifact("# Report", key="report", description="daily")
    assert isinstance(artifact_id, UUID)
    stored = _stored(artifact_id)
    assert (stored.key, stored.type, stored.data, stored.description) == (
        "report",
        "markdown",
        "# Report",
        "daily",
    )
    assert stored.created == stored.updated == harness.clock.now()
    assert stored.flow_run_id is None and stored.task_run_id is None


@pytest.mark.parametrize(
    "table",
    [
        [{"name": "a", "rows": 1}, {"name": "b", "rows": 2}],
        {"name": ["a", "b"], "rows": [1, 2]},
        [["a", 1], ["b", 2]],
    ],
)
def test_table_artifacts_take_the_three_shapes_prefect_takes(
    harness: TestHarness, table: object
) -> None:
    stored = _stored(create_table_artifact(table, key="rows"))  # type: ignore[arg-type]
    assert stored.type == "table"
    assert json.loads(stored.data) == table  # stored as JSON text, as Prefect does


def test_table_nan_cells_become_null(harness: TestHarness) -> None:
    stored = _stored(create_table_artifact([{"x": float("nan")}, {"x": 1.0}]))
    assert json.loads(stored.data) == [{"x": None}, {"x": 1.0}]


def test_table_cells_must_be_json(harness: TestHarness) -> None:
    with pytest.raises(InvalidArtifactError, match="must be JSON values"):
        create_table_artifact([{"when": object()}])


def test_link_and_image_artifacts(harness: TestHarness) -> None:
    assert _stored(create_link_artifact("https://x.example/a", "A")).data == (
        "[A](https://x.example/a)"
    )
    assert _stored(create_link_artifact("https://x.example/b")).data == (
        "[https://x.example/b](https://x.example/b)"
    )
    image = _stored(create_image_artifact("https://x.example/chart.png", key="chart"))
    assert (image.type, image.data) == ("image", "https://x.example/chart.png")


def test_artifact_model_create_and_format(harness: TestHarness) -> None:
    created = Artifact(type="custom", key="raw", data={"a": 1}).create()
    assert isinstance(created.id, UUID)
    assert created.data == '{"a": 1}'  # json.dumps of the data, as Prefect
    assert MarkdownArtifact(markdown="m").format() == "m"
    assert LinkArtifact(link="l", link_text="t").format() == "[t](l)"
    assert TableArtifact(table=[[1]]).format() == "[[1]]"
    assert ImageArtifact(image_url="u").format() == "u"


@pytest.mark.parametrize("key", ["", "UPPER", "under_score", "with space", "x/y", "k" * 256])
def test_keys_are_lowercase_letters_numbers_and_dashes(harness: TestHarness, key: str) -> None:
    with pytest.raises(ValueError, match=r"(?i)artifact key"):
        create_markdown_artifact("x", key=key)
    assert list_artifacts(all_versions=True) == []


def test_each_create_with_a_key_is_a_new_version(harness: TestHarness) -> None:
    clock = harness.clock
    assert isinstance(clock, FakeClock)
    ids = []
    for text in ("v1", "v2", "v3"):
        ids.append(create_markdown_artifact(text, key="report"))
        clock.advance(1)
    latest = Artifact.get("report")
    assert latest is not None and (latest.id, latest.data) == (ids[-1], "v3")
    assert [r.id for r in read_artifact("report")] == ids[::-1]
    assert [r.id for r in list_artifacts(key="report")] == ids[::-1]
    assert Artifact.get("no-such-key") is None
    assert Artifact.get("Not A Key") is None


def test_versions_created_without_the_clock_moving_keep_call_order(
    harness: TestHarness,
) -> None:
    ids = [create_markdown_artifact(str(i), key="same-instant") for i in range(5)]
    assert [r.id for r in read_artifact("same-instant")] == ids[::-1]
    latest = Artifact.get("same-instant")
    assert latest is not None and latest.data == "4"


def test_get_or_create(harness: TestHarness) -> None:
    first, created = MarkdownArtifact.get_or_create(key="once", markdown="m")
    assert created is True
    again, created_again = MarkdownArtifact.get_or_create(key="once", markdown="other")
    assert created_again is False and again.id == first.id


def test_artifacts_are_linked_to_the_run_they_are_created_in(harness: TestHarness) -> None:
    @task
    def summarize() -> UUID:
        return create_table_artifact([{"rows": 3}], key="summary")

    @flow
    def report() -> tuple[UUID, UUID]:
        return create_markdown_artifact("# In the flow", key="flow-note"), summarize()

    in_flow, in_task = report()
    run = harness.last_flow_run()
    (task_run,) = harness.task_runs(run.id)
    flow_artifact, task_artifact = _stored(in_flow), _stored(in_task)
    assert (flow_artifact.flow_run_id, flow_artifact.task_run_id) == (run.id, None)
    assert (task_artifact.flow_run_id, task_artifact.task_run_id) == (run.id, task_run.id)
    assert {r.id for r in list_artifacts(flow_run_id=run.id)} == {in_flow, in_task}


def test_progress_is_updatable_while_running(harness: TestHarness) -> None:
    seen: list[float] = []

    @flow
    def long_job() -> UUID:
        progress_id = create_progress_artifact(0.0, key="job-progress")
        for done in (25.0, 50.0, 100.0):
            update_progress_artifact(progress_id, done)
            seen.append(_stored(progress_id).data)
        return progress_id

    progress_id = long_job()
    assert seen == [25.0, 50.0, 100.0]
    assert _stored(progress_id).type == "progress"


def test_progress_update_sets_updated_and_description(harness: TestHarness) -> None:
    clock = harness.clock
    assert isinstance(clock, FakeClock)
    progress_id = create_progress_artifact(10, description="starting")
    created = clock.now()
    clock.advance(5)
    assert update_progress_artifact(progress_id, 20) == progress_id
    assert _stored(progress_id).description == "starting"
    update_progress_artifact(progress_id, 30, description="almost")
    stored = _stored(progress_id)
    assert (stored.data, stored.description) == (30, "almost")
    assert stored.created == created and stored.updated == clock.now()


def test_progress_outside_0_to_100_is_clamped_with_a_warning(
    harness: TestHarness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="stratoflow.artifacts"):
        progress_id = create_progress_artifact(150)
        assert _stored(progress_id).data == 100.0
        update_progress_artifact(progress_id, -5)
    assert _stored(progress_id).data == 0.0
    assert "invalid value" in caplog.text
    assert ProgressArtifact(progress=42).format() == 42


def test_updating_an_unknown_artifact_fails(harness: TestHarness) -> None:
    with pytest.raises(ObjectNotFound):
        update_progress_artifact(UUID(int=1), 50)


def test_ls_shows_the_latest_version_of_each_key_or_everything(harness: TestHarness) -> None:
    clock = harness.clock
    assert isinstance(clock, FakeClock)
    old = create_markdown_artifact("old", key="a")
    clock.advance(1)
    unkeyed = create_markdown_artifact("no key")
    clock.advance(1)
    new = create_markdown_artifact("new", key="a")
    clock.advance(1)
    other = create_markdown_artifact("b", key="b")
    assert [r.id for r in list_artifacts()] == [other, new]
    assert [r.id for r in list_artifacts(all_versions=True)] == [other, new, unkeyed, old]
    assert [r.id for r in list_artifacts(all_versions=True, limit=2)] == [other, new]


def test_read_artifact_by_id_or_key_or_neither(harness: TestHarness) -> None:
    artifact_id = create_markdown_artifact("x", key="k")
    assert read_artifact(str(artifact_id))[0].id == artifact_id
    with pytest.raises(ObjectNotFound, match="No artifact with key or id"):
        read_artifact("missing")
    with pytest.raises(ObjectNotFound):
        read_artifact(str(UUID(int=7)))


def test_size_limits(harness: TestHarness) -> None:
    with pytest.raises(InvalidArtifactError, match="the limit is"):
        create_markdown_artifact("x" * DATA_MAX_BYTES)
    with pytest.raises(InvalidArtifactError, match="description"):
        create_markdown_artifact("x", description="d" * (64 * 1024 + 1))


def test_async_helpers(harness: TestHarness) -> None:
    async def main() -> UUID:
        first = await acreate_markdown_artifact("a", key="async-key")
        # the sync name dispatches to the coroutine where a loop runs, as in Prefect
        second = await create_markdown_artifact("b", key="async-key")
        latest = await Artifact.aget("async-key")
        assert latest is not None and latest.id == second
        return first

    first = asyncio.run(main())
    assert _stored(first).data == "a"


def test_in_async_flows_and_tasks_the_sync_names_are_awaited(harness: TestHarness) -> None:
    """As in Prefect 3: inside an `async def` run the helpers return coroutines."""

    @task
    async def publish() -> UUID:
        await Variable.set("async_threshold", 5)
        return await create_markdown_artifact("from the task", key="async-run")

    @flow
    async def report() -> tuple[UUID, UUID, object]:
        in_flow = await create_markdown_artifact("from the flow", key="async-run")
        return in_flow, await publish(), await Variable.get("async_threshold")

    in_flow, in_task, threshold = asyncio.run(report())
    run = harness.last_flow_run()
    assert threshold == 5
    assert _stored(in_flow).flow_run_id == run.id
    task_artifact = _stored(in_task)
    assert task_artifact.flow_run_id == run.id and task_artifact.task_run_id is not None
    latest = Artifact.get("async-run")
    assert latest is not None and latest.id == in_task
