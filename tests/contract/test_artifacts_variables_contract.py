"""Variables and artifacts behave the same on the memory and the AWS backend (the
`services` fixture runs each test on both; `make_peer()` is another client)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stratoflow import flow, task
from stratoflow.artifacts import (
    Artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    list_artifacts,
    read_artifact,
    update_progress_artifact,
)
from stratoflow.clock import FakeClock
from stratoflow.context import Services, use_services
from stratoflow.exceptions import ObjectNotFound
from stratoflow.records import INLINE_DATA_MAX_BYTES, VariableAlreadyExists
from stratoflow.variables import Variable, list_variables


def _advance(services: Services, seconds: float = 1) -> None:
    clock = services.clock
    assert isinstance(clock, FakeClock)
    clock.advance(seconds)


def test_variables(services: Services, make_peer: Callable[[], Services]) -> None:
    Variable.set("shared", {"a": [1, 2]}, tags=["x"])
    with pytest.raises(VariableAlreadyExists):
        Variable.set("shared", 1)
    with use_services(make_peer()):
        assert Variable.get("shared") == {"a": [1, 2]}
        Variable.set("shared", "changed", overwrite=True)
    assert Variable.get("shared") == "changed"
    assert [(v.name, v.tags) for v in list_variables()] == [("shared", [])]
    assert Variable.unset("shared") is True
    assert Variable.get("shared", default=0) == 0


def test_artifact_versions_runs_and_progress(
    services: Services, make_peer: Callable[[], Services]
) -> None:
    @task
    def work() -> None:
        create_table_artifact([[1, 2]], key="tbl")

    @flow
    def publish() -> None:
        create_markdown_artifact("v1", key="doc")
        work()

    publish()
    _advance(services)
    newest = create_markdown_artifact("v2", key="doc")
    _advance(services)
    progress = create_progress_artifact(1)
    with use_services(make_peer()):
        latest = Artifact.get("doc")
        assert latest is not None and (latest.id, latest.data) == (newest, "v2")
        update_progress_artifact(progress, 75)
    assert read_artifact(str(progress))[0].data == 75
    assert [r.data for r in list_artifacts(key="doc")] == ["v2", "v1"]
    assert [r.key for r in list_artifacts()] == ["doc", "tbl"]
    assert len(list_artifacts(all_versions=True)) == 4
    run_id = services.backend.list_flow_runs(limit=1)[0].id
    assert sorted(str(r.key) for r in list_artifacts(flow_run_id=run_id)) == ["doc", "tbl"]
    with pytest.raises(ObjectNotFound):
        read_artifact("00000000-0000-0000-0000-000000000000")


def test_large_bodies_read_back(services: Services) -> None:
    text = "b" * (INLINE_DATA_MAX_BYTES * 2)
    create_markdown_artifact(text, key="large")
    latest = Artifact.get("large")
    assert latest is not None and latest.data == text and latest.body_bytes == len(text) + 2
