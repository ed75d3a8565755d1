"""Prefect 3's event names: `emit_event` with `prefect.resource.*` labels, and the
trigger schemas under `stratoflow.events.schemas` (Prefect's documented forms)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stratoflow import emit_event
from stratoflow.automations import DoNothing
from stratoflow.automations import models as own
from stratoflow.automations.matching import covers, is_expected
from stratoflow.clock import FakeClock
from stratoflow.events import Event, InvalidEventError, Resource, local_event_store
from stratoflow.events.schemas.automations import (
    Automation,
    CompoundTrigger,
    EventTrigger,
    Posture,
    SequenceTrigger,
)
from stratoflow.events.schemas.events import RelatedResource, ResourceSpecification
from stratoflow.testing import stratoflow_test_harness
from tests._time import anchor

T0 = anchor()  # yesterday 10:00 UTC: inside every retention window (tests/_time.py)


def test_emit_event_takes_prefect_resource_labels() -> None:
    with stratoflow_test_harness(clock=FakeClock(T0)):
        event = emit_event(
            "acme.model.trained",
            resource={"prefect.resource.id": "acme.model.churn", "prefect.resource.name": "churn"},
            related=[{"prefect.resource.id": "acme.team.data", "prefect.resource.role": "owner"}],
        )
        assert event is not None
        assert local_event_store().query(T0 - timedelta(minutes=1)) == [event]
    assert event.resource.id == "acme.model.churn"
    assert event.resource.labels == {
        "stratoflow.resource.id": "acme.model.churn",
        "stratoflow.resource.name": "churn",
    }
    assert [(r.id, r.role) for r in event.related] == [("acme.team.data", "owner")]


def test_both_spellings_with_different_values_are_refused() -> None:
    with stratoflow_test_harness(clock=FakeClock(T0)), pytest.raises(InvalidEventError):
        emit_event(
            "acme.model.trained",
            {"prefect.resource.id": "acme.a", "stratoflow.resource.id": "acme.b"},
        )


def test_both_spellings_with_the_same_value_are_one_label() -> None:
    resource = Resource(
        labels={"prefect.resource.id": "acme.a", "stratoflow.resource.id": "acme.a"}
    )
    assert resource.labels == {"stratoflow.resource.id": "acme.a"}


def test_a_resource_without_any_id_is_still_refused() -> None:
    with stratoflow_test_harness(clock=FakeClock(T0)), pytest.raises(InvalidEventError):
        emit_event("acme.model.trained", {"prefect.resource.name": "churn"})


def test_prefect_schema_names() -> None:
    assert RelatedResource is Resource
    assert ResourceSpecification({"prefect.resource.id": "x"}).root == {"prefect.resource.id": "x"}


# Triggers written as in Prefect


def failed_run_event() -> Event:
    return Event(
        event="stratoflow.flow-run.Failed",
        resource=Resource.of("stratoflow.flow-run.1234"),
        occurred=T0,
    )


def test_an_event_trigger_written_as_in_prefect() -> None:
    trigger = EventTrigger(
        expect={"prefect.flow-run.Failed"},
        match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
        for_each={"prefect.resource.id"},
        posture=Posture.Reactive,
        threshold=1,
        within=timedelta(0),
    )
    assert isinstance(trigger, own.EventTrigger)
    assert trigger.expect == ("stratoflow.flow-run.Failed",)
    assert trigger.match == {"stratoflow.resource.id": "stratoflow.flow-run.*"}
    assert trigger.for_each == ("stratoflow.resource.id",)
    assert trigger.posture == "Reactive"
    assert trigger.within == 0
    assert covers(trigger, failed_run_event()) and is_expected(trigger, failed_run_event())


def test_a_proactive_trigger_takes_a_timedelta_window() -> None:
    trigger = EventTrigger(
        after={"prefect.flow-run.Running"},
        expect={"prefect.flow-run.Completed"},
        posture=Posture.Proactive,
        within=timedelta(minutes=30),
    )
    assert (trigger.posture, trigger.within) == ("Proactive", 1800.0)
    with pytest.raises(ValueError, match="within"):
        EventTrigger(posture=Posture.Proactive, within=timedelta(0))


def test_composite_triggers_convert_their_children() -> None:
    compound = CompoundTrigger(
        require="any",
        within=None,
        triggers=[
            {"type": "event", "expect": {"prefect.flow-run.Failed"}, "within": timedelta(0)},
            EventTrigger(expect={"prefect.flow-run.Crashed"}),
        ],
    )
    assert [t.expect for t in compound.triggers] == [  # type: ignore[union-attr]
        ("stratoflow.flow-run.Failed",),
        ("stratoflow.flow-run.Crashed",),
    ]
    sequence = SequenceTrigger(
        triggers=[EventTrigger(expect={"a.b"}), EventTrigger(expect={"c.d"})],
        within=timedelta(hours=1),
    )
    assert sequence.within == 3600


def test_an_automation_takes_a_prefect_trigger_and_is_stratoflows() -> None:
    automation = Automation(
        name="on-failure",
        trigger={"type": "event", "expect": ["prefect.flow-run.Failed"], "within": timedelta(0)},
        actions=[DoNothing()],
    )
    assert isinstance(automation, own.Automation)
    assert automation.trigger.expect == ("stratoflow.flow-run.Failed",)  # type: ignore[union-attr]
    parsed = own.Automation.model_validate_json(automation.model_dump_json())
    assert parsed.trigger == automation.trigger
