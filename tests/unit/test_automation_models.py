"""Automation definitions: models, YAML/JSON loading, errors with field paths (pure)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from stratoflow.automations import (
    Automation,
    AutomationDefinitionError,
    CallWebhook,
    CancelFlowRun,
    CompoundTrigger,
    DoNothing,
    EventTrigger,
    RunDeployment,
    SendNotification,
    SequenceTrigger,
    load_automations,
    parse_automations,
)
from stratoflow.automations.models import has_proactive, parent_path, trigger_paths
from stratoflow.states import StateType

YAML = """
- name: retry-failed-etl
  description: run the cleanup when the nightly ETL fails
  trigger:
    expect: stratoflow.flow-run.Failed
    match_related:
      stratoflow.resource.role: deployment
      stratoflow.resource.name: nightly-etl
  actions:
    - type: run-deployment
      deployment: cleanup
      parameters:
        failed_run: "{{ event.resource.id }}"
        attempt: "{{ flow_run.run_count }}"
    - type: send-notification
      topic_arn: arn:aws:sns:us-east-1:123456789012:oncall
- name: no-completion-in-an-hour
  trigger:
    type: event
    posture: Proactive
    expect: [stratoflow.flow-run.Completed]
    match_related: {stratoflow.resource.id: stratoflow.deployment.nightly-etl}
    within: 3600
  actions: [{type: call-webhook, url: "https://hooks.example.com/x", timeout: 5}]
  actions_on_resolve: [{type: do-nothing}]
- name: flaky
  trigger:
    type: compound
    require: 2
    within: 600
    triggers:
      - expect: stratoflow.flow-run.Crashed
      - {type: sequence, triggers: [{expect: a.b}, {expect: c.d}]}
      - expect: stratoflow.flow-run.Failed
        threshold: 3
  actions:
    - {type: pause-deployment, deployment: nightly-etl}
    - {type: change-flow-run-state, state: cancelled, force: true}
"""


def test_yaml_file_with_a_list(tmp_path: Path):
    path = tmp_path / "automations.yaml"
    path.write_text(YAML)
    first, second, third = load_automations(path)
    assert first.trigger == EventTrigger(
        expect=("stratoflow.flow-run.Failed",),
        match_related={
            "stratoflow.resource.role": "deployment",
            "stratoflow.resource.name": "nightly-etl",
        },
    )
    assert isinstance(first.actions[0], RunDeployment)
    assert first.actions[0].parameters["failed_run"] == "{{ event.resource.id }}"
    assert isinstance(first.actions[1], SendNotification)
    assert isinstance(second.trigger, EventTrigger) and second.trigger.posture == "Proactive"
    assert isinstance(second.actions[0], CallWebhook) and second.actions[0].method == "POST"
    assert isinstance(third.trigger, CompoundTrigger) and third.trigger.required == 2
    assert isinstance(third.trigger.triggers[1], SequenceTrigger)
    assert third.actions[1].state is StateType.CANCELLED  # type: ignore[union-attr]
    assert all(a.id is None and a.enabled for a in (first, second, third))


def test_json_file_one_automation_or_an_automations_key(tmp_path: Path):
    one = {"name": "a", "trigger": {"expect": "x.y"}, "actions": [{"type": "do-nothing"}]}
    (tmp_path / "one.json").write_text(json.dumps(one))
    (tmp_path / "many.json").write_text(json.dumps({"automations": [one, {**one, "name": "b"}]}))
    assert [a.name for a in load_automations(tmp_path / "one.json")] == ["a"]
    assert [a.name for a in load_automations(tmp_path / "many.json")] == ["a", "b"]


def test_python_construction_round_trips_through_json():
    automation = Automation(
        name="cancel stuck runs",
        trigger=EventTrigger(
            after=["stratoflow.flow-run.Running"],
            expect=["stratoflow.flow-run.Completed", "stratoflow.flow-run.Failed"],
            for_each=["stratoflow.resource.id"],
            posture="Proactive",
            within=3600,
        ),
        actions=[CancelFlowRun()],
    )
    assert Automation.model_validate_json(automation.model_dump_json()) == automation
    assert automation.with_id().id is not None
    with pytest.raises(ValidationError):
        automation.name = "other"  # type: ignore[misc]  # frozen


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {"trigger": {"type": "event", "threshold": 0}},
            "automations[0].trigger.threshold: Input should be greater than or equal to 1",
        ),
        ({"trigger": {"within": -1}}, "automations[0].trigger.within: Input should be greater"),
        ({"trigger": {"posture": "Sometimes"}}, "automations[0].trigger.posture: Input should be"),
        (
            {"trigger": {"posture": "Proactive"}},
            "automations[0].trigger: a Proactive trigger needs",
        ),
        ({"trigger": {"type": "nope"}}, "automations[0].trigger: `type` must be one of event"),
        (
            {"trigger": {"type": "compound", "require": 3, "triggers": [{}, {}]}},
            "automations[0].trigger: require must be 'any', 'all' or between 1 and 2",
        ),
        (
            {"trigger": {"type": "compound", "require": "most", "triggers": [{}]}},
            "automations[0].trigger.require: require must be 'any', 'all' or a number",
        ),
        (
            {"trigger": {"type": "sequence", "triggers": [{}, {"threshold": "x"}]}},
            "automations[0].trigger.triggers[1].threshold: Input should be a valid integer",
        ),
        ({"trigger": {"type": "sequence", "triggers": []}}, "trigger.triggers: list at least one"),
        ({"trigger": {"surprise": 1}}, "automations[0].trigger.surprise: Extra inputs"),
        ({"actions": [{"type": "explode"}]}, "automations[0].actions[0]: `type` must be one of"),
        ({"actions": [{}]}, "automations[0].actions[0]: `type` must be one of run-deployment"),
        (
            {"actions": [{"type": "call-webhook", "url": "https://x.example", "timeout": 31}]},
            "automations[0].actions[0].timeout: Input should be less than or equal to 30",
        ),
        (
            {"actions": [{"type": "call-webhook", "url": "ftp://x.example"}]},
            "automations[0].actions[0].url: expected an http:// or https:// URL",
        ),
        ({"actions": [{"type": "call-webhook"}]}, "automations[0].actions[0].url: Field required"),
        (
            {"actions": [{"type": "send-notification", "topic_arn": "oncall"}]},
            "automations[0].actions[0].topic_arn: String should match pattern",
        ),
        (
            {"actions": [{"type": "run-deployment", "parameters": {"x": "{{ oops"}}]},
            "automations[0].actions[0]: parameters.x is not a valid template",
        ),
        ({"actions": []}, "automations[0]: an automation needs at least one action"),
        (
            {"actions_on_resolve": [{"type": "do-nothing"}]},
            "automations[0]: actions_on_resolve needs a Proactive event trigger",
        ),
        ({"name": ""}, "automations[0].name: String should have at least 1 character"),
        ({"id": "not-a-uuid"}, "automations[0].id:"),
    ],
)
def test_invalid_definitions_name_the_field(document: dict[str, object], expected: str):
    base: dict[str, object] = {
        "name": "a",
        "trigger": {"expect": "x.y"},
        "actions": [{"type": "do-nothing"}],
    }
    with pytest.raises(AutomationDefinitionError) as raised:
        parse_automations([{**base, **document}], source="f.yaml")
    assert str(raised.value).startswith("f.yaml: ")
    assert expected in str(raised.value)


def test_a_missing_field_names_it():
    with pytest.raises(AutomationDefinitionError) as raised:
        parse_automations({"name": "a", "actions": [{"type": "do-nothing"}]})
    assert "automations[0].trigger: Field required" in str(raised.value)


def test_file_level_errors(tmp_path: Path):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("name: [unclosed\n")
    with pytest.raises(AutomationDefinitionError, match="not valid YAML"):
        load_automations(bad_yaml)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{")
    with pytest.raises(AutomationDefinitionError, match="not valid JSON"):
        load_automations(bad_json)
    with pytest.raises(AutomationDefinitionError, match="no such file"):
        load_automations(tmp_path / "missing.yaml")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text")
    with pytest.raises(AutomationDefinitionError, match="expected an automation"):
        load_automations(scalar)
    twice = tmp_path / "twice.yaml"
    twice.write_text(
        textwrap.dedent(
            """
            - {name: a, trigger: {}, actions: [{type: do-nothing}]}
            - {name: a, trigger: {}, actions: [{type: do-nothing}]}
            """
        )
    )
    with pytest.raises(AutomationDefinitionError, match=r"automations\[1\].name: 'a' is also"):
        load_automations(twice)


def test_trigger_tree_paths():
    tree = CompoundTrigger(
        require="any",
        triggers=[
            EventTrigger(),
            SequenceTrigger(triggers=[EventTrigger(), EventTrigger(posture="Proactive", within=5)]),
        ],
    )
    paths = [p for p, _ in trigger_paths(tree)]
    assert paths == [
        "trigger",
        "trigger.triggers[0]",
        "trigger.triggers[1]",
        "trigger.triggers[1].triggers[0]",
        "trigger.triggers[1].triggers[1]",
    ]
    assert parent_path("trigger.triggers[1].triggers[0]") == ("trigger.triggers[1]", 0)
    assert parent_path("trigger") is None
    assert has_proactive(tree) and not has_proactive(EventTrigger())
    assert CompoundTrigger(require="all", triggers=[EventTrigger()] * 3).required == 3
    assert CompoundTrigger(require="any", triggers=[EventTrigger()] * 3).required == 1


def test_do_nothing_is_an_action():
    assert (
        Automation(name="x", trigger=EventTrigger(), actions=[DoNothing()]).actions[0].type
        == "do-nothing"
    )
