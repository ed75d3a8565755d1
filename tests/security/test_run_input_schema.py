"""A paused run's input schema is written by its worker: to whoever resumes the run (an
operator's CLI, the automations function) it is untrusted. The attack: a worker stores a
schema whose `pattern` is a catastrophic regular expression, a `$ref` to another
document, or a schema large enough to exhaust the checker (stratoflow.input.schemas)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from stratoflow.exceptions import InvalidRunInput
from stratoflow.flow_runs import resume_flow_run
from stratoflow.input import create_flow_run_input, keyset_from_base_key
from stratoflow.input.schemas import UnsafeSchema, safe_schema
from stratoflow.models import FlowRun
from stratoflow.states import Paused, StateType
from stratoflow.testing import TestHarness, stratoflow_test_harness

EVIL_PATTERN = "^(a+)+$"


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


def paused_run(harness: TestHarness, schema: dict[str, object]) -> FlowRun:
    run = FlowRun(id="run-1", name="patient-otter", flow_name="approve")
    harness.backend.create_flow_run(run)
    keyset = keyset_from_base_key("pause-0")
    harness.backend.set_flow_run_state(
        run.id, Paused("waiting", pause_key="pause-0", run_input_keyset=dict(keyset))
    )
    create_flow_run_input(keyset["schema"], schema, flow_run_id=run.id)
    return run


def test_a_catastrophic_pattern_is_not_run_by_the_resumer(harness: TestHarness) -> None:
    schema = {
        "type": "object",
        "properties": {"note": {"type": "string", "pattern": EVIL_PATTERN}},
        "required": ["note"],
    }
    run = paused_run(harness, schema)
    started = time.monotonic()
    resumed = resume_flow_run(run.id, run_input={"note": "a" * 40 + "!"})
    assert time.monotonic() - started < 1.0  # the pattern was never evaluated
    assert resumed.state is not None and resumed.state.type is StateType.RUNNING


def test_structure_and_bounds_are_still_checked(harness: TestHarness) -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "maximum": 10}},
        "required": ["n"],
    }
    run = paused_run(harness, schema)
    with pytest.raises(InvalidRunInput, match="n: 11 is greater than the maximum of 10"):
        resume_flow_run(run.id, run_input={"n": 11})
    assert harness.backend.read_flow_run(run.id).state.type is StateType.PAUSED


def test_only_local_refs_and_safe_keywords_are_kept() -> None:
    cleaned = safe_schema(
        {
            "type": "object",
            "properties": {
                "a": {"$ref": "https://attacker.example/schema.json"},
                "b": {"$ref": "#/$defs/B", "pattern": EVIL_PATTERN, "format": "email"},
            },
            "$defs": {"B": {"type": "string", "patternProperties": {".*": {}}}},
        }
    )
    assert cleaned == {
        "type": "object",
        "properties": {"a": {}, "b": {"$ref": "#/$defs/B"}},
        "$defs": {"B": {"type": "string"}},
    }


def test_a_schema_too_deep_or_large_is_refused() -> None:
    deep: dict[str, object] = {"type": "object"}
    for _ in range(100):
        deep = {"type": "object", "properties": {"x": deep}}
    with pytest.raises(UnsafeSchema):
        safe_schema(deep)
    wide = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(6000)}}
    with pytest.raises(UnsafeSchema):
        safe_schema(wide)
