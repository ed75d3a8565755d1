"""emit_event with the in-process backend, and the MemoryEventStore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stratoflow import emit_event, flow, task
from stratoflow.clock import FakeClock
from stratoflow.events import Event, InvalidEventError, Resource, local_event_store
from stratoflow.events.store import InvalidEventQuery, MemoryEventStore
from stratoflow.testing import stratoflow_test_harness

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
MODEL = {"stratoflow.resource.id": "acme.model.churn", "stratoflow.resource.name": "churn"}


def test_emit_keeps_the_event_with_the_in_process_backend() -> None:
    with stratoflow_test_harness(clock=FakeClock(T0)):
        event = emit_event("acme.model.trained", MODEL, payload={"auc": 0.91})
        assert event is not None
        assert local_event_store().query(T0 - timedelta(minutes=1)) == [event]
        assert local_event_store().is_derived(event.id) is False
    assert event.occurred == T0  # the services' clock
    assert event.resource.get("stratoflow.resource.name") == "churn"
    assert event.related == ()
    with stratoflow_test_harness(clock=FakeClock(T0)):  # each harness starts empty
        assert local_event_store().query(T0 - timedelta(minutes=1)) == []


def test_emit_takes_resources_related_and_a_time() -> None:
    when = T0 - timedelta(hours=1)
    with stratoflow_test_harness(clock=FakeClock(T0)):
        event = emit_event(
            "acme.dataset.refreshed",
            Resource.of("acme.dataset.users"),
            related=[
                {"stratoflow.resource.id": "acme.team.data", "stratoflow.resource.role": "owner"}
            ],
            occurred=when,
        )
    assert event is not None
    assert event.occurred == when
    assert [r.role for r in event.related] == ["owner"]


def test_emit_inside_runs_relates_the_run() -> None:
    @task(tags=["io"])
    def announce() -> Event | None:
        return emit_event("acme.file.written", {"stratoflow.resource.id": "acme.file.a"})

    @flow
    def pipeline() -> tuple[Event | None, Event | None]:
        own = emit_event("acme.pipeline.step", {"stratoflow.resource.id": "acme.step.1"})
        return own, announce()

    with stratoflow_test_harness(clock=FakeClock(T0)) as harness:
        own, from_task = pipeline()
        run = harness.last_flow_run()
    assert own is not None and from_task is not None
    assert {(r.role, r.id) for r in own.related} == {
        ("flow-run", f"stratoflow.flow-run.{run.id}"),
        ("flow", "stratoflow.flow.pipeline"),
    }
    roles = {r.role for r in from_task.related}
    assert roles == {"task-run", "task", "tag", "flow-run", "flow"}
    assert ("tag", "stratoflow.tag.io") in {(r.role, r.id) for r in from_task.related}


@pytest.mark.parametrize(
    ("name", "resource", "related", "payload", "message"),
    [
        ("", MODEL, None, None, "needs a name"),
        ("acme.x", {"stratoflow.resource.name": "no id"}, None, None, "stratoflow.resource.id"),
        ("acme.x", "acme.model.churn", None, None, "dict of labels"),
        ("acme.x", {"stratoflow.resource.id": "a", "n": 1}, None, None, "must be strings"),
        ("acme.x", MODEL, [{"stratoflow.resource.id": "b"}], None, "stratoflow.resource.role"),
        ("acme.x", MODEL, None, {"when": datetime.now}, "must be JSON"),
        ("acme.x", MODEL, None, {"blob": "x" * 300_000}, "the limit is"),
    ],
)
def test_bad_input_is_a_clear_value_error(
    name: str, resource: object, related: object, payload: object, message: str
) -> None:
    with stratoflow_test_harness():
        with pytest.raises(InvalidEventError, match=message) as caught:
            emit_event(name, resource, related, payload)  # type: ignore[arg-type]
        assert local_event_store().query(T0 - timedelta(days=3650)) == []
    assert isinstance(caught.value, ValueError)


def event(name: str, resource: str, minutes: int) -> Event:
    return Event(
        event=name, resource=Resource.of(resource), occurred=T0 + timedelta(minutes=minutes)
    )


def test_memory_store_put_is_idempotent_and_query_filters() -> None:
    store = MemoryEventStore()
    a = event("stratoflow.flow-run.Completed", "stratoflow.flow-run.1", 1)
    b = event("stratoflow.flow-run.Failed", "stratoflow.flow-run.2", 2)
    c = event("acme.model.trained", "acme.model.churn", 3)
    assert [store.put(e, derived=True) for e in (a, b, c)] == [True, True, True]
    assert store.put(a, derived=True) is False
    assert store.query(T0) == [c, b, a]
    assert store.query(T0, T0 + timedelta(minutes=2)) == [b, a]
    assert store.query(T0, name="stratoflow.flow-run.") == [b, a]
    assert store.query(T0, resource="acme.") == [c]
    assert store.query(T0, limit=1) == [c]
    with pytest.raises(InvalidEventQuery):
        store.query(T0, T0 - timedelta(seconds=1))
    with pytest.raises(InvalidEventQuery):
        store.query(T0, limit=0)


def test_events_ls_needs_the_aws_backend() -> None:
    from typer.testing import CliRunner

    from stratoflow.cli import app

    with stratoflow_test_harness():
        result = CliRunner().invoke(app, ["events", "ls"])
    assert result.exit_code == 2
    assert "Events are stored with the AWS backend" in result.output
