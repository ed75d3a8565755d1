"""Label and event-name matching, bucket keys (pure)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from stratoflow.automations.matching import (
    MAX_BUCKET_KEY,
    bucket_key,
    bucket_values,
    covers,
    find_label,
    is_after,
    is_expected,
    labels_match,
    matches,
    matches_any,
    related_match,
)
from stratoflow.automations.models import EventTrigger
from stratoflow.events.models import Event, Resource

RUN = "stratoflow.flow-run.7f3a"


def event(name: str = "stratoflow.flow-run.Failed", **related: str) -> Event:
    return Event(
        event=name,
        resource=Resource.of({"stratoflow.resource.id": RUN, "stratoflow.resource.name": "run-a"}),
        related=tuple(
            Resource.of(f"stratoflow.{role}.{value}", role=role, name=value)
            for role, value in related.items()
        ),
    )


def test_literal_and_wildcard_patterns():
    assert matches("stratoflow.flow-run.Failed", "stratoflow.flow-run.Failed")
    assert not matches("stratoflow.flow-run.Failed", "stratoflow.flow-run.Failed2")
    assert matches("stratoflow.flow-run.*", "stratoflow.flow-run.Failed")
    assert matches("*.Failed", "stratoflow.flow-run.Failed")
    assert matches("stratoflow.*.Failed", "stratoflow.task-run.Failed")
    assert not matches("stratoflow.*.Failed", "stratoflow.task-run.Completed")
    assert matches("a*b*c", "abc")
    assert not matches("a.c", "abc")  # a dot is literal, not a regex
    assert matches("x[1]", "x[1]")


def test_a_missing_label_matches_only_a_bare_wildcard():
    assert matches("*", None)
    assert not matches("stratoflow.*", None)
    assert matches_any(["nope", "*"], None)


def test_list_of_patterns_means_any_of():
    assert matches_any(
        ["stratoflow.flow-run.Failed", "stratoflow.flow-run.Crashed"], "stratoflow.flow-run.Crashed"
    )
    assert not matches_any(["a", "b"], "c")


def test_labels_and_related_resources():
    e = event(deployment="nightly", tag="prod")
    assert labels_match({"stratoflow.resource.id": "stratoflow.flow-run.*"}, e.resource.labels)
    assert not labels_match({"stratoflow.resource.name": "run-b"}, e.resource.labels)
    assert related_match({}, e.related)
    assert related_match({"stratoflow.resource.role": "deployment"}, e.related)
    assert related_match(
        {"stratoflow.resource.role": "deployment", "stratoflow.resource.name": ["nightly", "x"]},
        e.related,
    )
    # Every spec of a list must be met, each by some related resource.
    assert related_match(
        [
            {"stratoflow.resource.id": "stratoflow.tag.prod"},
            {"stratoflow.resource.name": "nightly"},
        ],
        e.related,
    )
    assert not related_match(
        [{"stratoflow.resource.id": "stratoflow.tag.dev"}, {"stratoflow.resource.name": "nightly"}],
        e.related,
    )
    # Labels of one spec must hold on the same related resource.
    assert not related_match(
        {"stratoflow.resource.role": "tag", "stratoflow.resource.name": "nightly"}, e.related
    )


def test_after_and_expect():
    trigger = EventTrigger(after=["stratoflow.flow-run.Running"], expect=["stratoflow.flow-run.*"])
    running, failed = event("stratoflow.flow-run.Running"), event()
    assert is_after(trigger, running) and not is_expected(trigger, running)
    assert is_expected(trigger, failed) and not is_after(trigger, failed)
    assert covers(trigger, running) and covers(trigger, failed)
    assert not covers(EventTrigger(expect=["stratoflow.deployment.*"]), failed)
    assert covers(EventTrigger(), failed)  # no expect: every event
    assert not covers(EventTrigger(match={"stratoflow.resource.id": "other.*"}), failed)
    assert not covers(
        EventTrigger(match_related={"stratoflow.resource.role": "deployment"}), failed
    )


def test_for_each_values_and_bucket_keys():
    e = event(deployment="nightly")
    assert find_label(e, "stratoflow.resource.id") == RUN
    assert find_label(e, "related:deployment:stratoflow.resource.name") == "nightly"
    assert find_label(e, "related:work-queue:stratoflow.resource.name") is None
    assert bucket_values(["stratoflow.resource.id"], e) == RUN
    assert bucket_values([], e) == ""
    assert (
        bucket_values(["related:deployment:stratoflow.resource.name", "missing"], e) == "nightly|"
    )
    assert bucket_key("trigger", RUN) == RUN
    assert bucket_key("trigger.triggers[1]", RUN) == f"trigger.triggers[1]:{RUN}"
    long = bucket_key("trigger", "x" * 5000)
    assert len(long) <= MAX_BUCKET_KEY and long != bucket_key("trigger", "x" * 4999)


# Properties

text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="*"), max_size=20)


@given(text)
def test_a_pattern_without_wildcards_is_equality(value: str):
    assert matches(value, value)
    assert not matches(value, value + "x")


@given(text, text)
def test_a_prefix_wildcard_is_startswith(prefix: str, value: str):
    assert matches(prefix + "*", value) == value.startswith(prefix)


@given(st.lists(text, min_size=1, max_size=5), st.data())
def test_replacing_parts_of_a_value_by_wildcards_still_matches(
    parts: list[str], data: st.DataObject
):
    value = "".join(parts)
    starred = [data.draw(st.booleans()) for _ in parts]
    pattern = "".join("*" if star else part for part, star in zip(parts, starred, strict=True))
    assert matches(pattern, value)


@given(st.text(alphabet="ab*", max_size=8), st.text(alphabet="ab", max_size=8))
def test_agrees_with_a_reference_regex(pattern: str, value: str):
    reference = "^" + "".join(".*" if c == "*" else re.escape(c) for c in pattern) + "$"
    assert matches(pattern, value) == (re.match(reference, value, re.DOTALL) is not None)
