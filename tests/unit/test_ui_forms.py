"""Forms generated from JSON schemas (stratoflow.ui.forms): fields with HTML5 validation
from a flow's real parameter schema, typed values back from the posted form, and
untrusted schemas that cannot do harm."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Literal

import pytest
from pydantic import BaseModel

from stratoflow import flow
from stratoflow.deployments.parameter_schema import check_parameter_types
from stratoflow.ui.forms import FIELD_PREFIX, FormField, form_fields, form_values


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Window(BaseModel):
    days: int = 1


@flow
def report(
    rows: int,
    rate: float = 0.5,
    title: str = "daily",
    mode: Literal["fast", "full"] = "fast",
    color: Color = Color.RED,
    dry_run: bool = False,
    ids: list[int] | None = None,
    window: Window | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> None:
    """A flow with one parameter of each kind a form shows."""


SCHEMA = report.parameter_schema()


def by_name(fields: list[FormField]) -> dict[str, FormField]:
    return {item.name: item for item in fields}


def test_each_kind_of_parameter_gets_its_input() -> None:
    fields = by_name(form_fields(SCHEMA))
    assert list(fields) == list(SCHEMA["properties"])  # the signature's order
    rows = fields["rows"]
    assert (rows.widget, rows.required, rows.value) == ("number", True, "")
    assert rows.attributes == {"step": "1"}
    assert fields["rate"].attributes == {"step": "any"} and fields["rate"].value == "0.5"
    assert (fields["title"].widget, fields["title"].value) == ("text", "daily")
    mode = fields["mode"]
    assert mode.widget == "select" and mode.options == (('"fast"', "fast"), ('"full"', "full"))
    assert mode.value == '"fast"'
    assert fields["color"].widget == "select"  # an Enum, through its $ref
    assert [label for _, label in fields["color"].options] == ["red", "blue"]
    assert fields["dry_run"].widget == "checkbox" and not fields["dry_run"].checked
    assert (fields["ids"].widget, fields["ids"].nullable, fields["ids"].value) == (
        "json",
        True,
        "null",
    )
    assert fields["window"].widget == "json"
    assert fields["since"].widget == "datetime" and fields["since"].nullable
    assert fields["limit"].widget == "number" and fields["limit"].nullable


def test_bounds_and_lengths_become_html5_attributes() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 1, "maximum": 10},
            "name": {"type": "string", "minLength": 2, "maxLength": 8},
            "evil": {"type": "number", "minimum": '1" onfocus="alert(1)', "maximum": True},
        },
        "required": ["n"],
    }
    fields = by_name(form_fields(schema))
    assert fields["n"].attributes == {"step": "1", "min": "1", "max": "10"}
    assert fields["name"].attributes == {"minlength": "2", "maxlength": "8"}
    assert fields["evil"].attributes == {"step": "any"}  # not numbers: ignored


def test_given_values_fill_the_form() -> None:
    fields = by_name(form_fields(SCHEMA, {"rows": 7, "dry_run": True, "ids": [1, 2]}))
    assert fields["rows"].value == "7"
    assert fields["dry_run"].checked
    assert fields["ids"].value == "[\n  1,\n  2\n]"


def form(**values: str) -> dict[str, list[str]]:
    return {FIELD_PREFIX + name: [value] for name, value in values.items()}


def test_the_posted_form_becomes_typed_values_the_sdks_check_accepts() -> None:
    values, errors = form_values(
        SCHEMA,
        form(
            rows="12",
            rate="2",
            title="weekly",
            mode='"full"',
            color='"blue"',
            dry_run="true",
            ids="[1, 2]",
            window='{"days": 3}',
            since="2030-01-02T03:04",
            limit="",
        ),
    )
    assert errors == {}
    assert values == {
        "rows": 12,
        "rate": 2,
        "title": "weekly",
        "mode": "full",
        "color": "blue",
        "dry_run": True,
        "ids": [1, 2],
        "window": {"days": 3},
        "since": "2030-01-02T03:04:00+00:00",
    }
    check_parameter_types("report", SCHEMA, values)  # the deployments' own check passes


def test_an_unchecked_box_is_false_and_an_empty_optional_field_is_left_out() -> None:
    values, errors = form_values(SCHEMA, form(rows="1"))
    assert errors == {} and values == {"rows": 1, "dry_run": False}


@pytest.mark.parametrize(
    ("posted", "field", "message"),
    [
        ({}, "rows", "Required."),
        ({"rows": "1.5"}, "rows", "not a whole number"),
        ({"rows": "1", "rate": "fast"}, "rate", "not a number"),
        ({"rows": "1", "rate": "inf"}, "rate", "not a finite number"),
        ({"rows": "1", "ids": "[1,"}, "ids", "Not valid JSON"),
        ({"rows": "1", "mode": '"other"'}, "mode", "Choose one of the listed values"),
        ({"rows": "1", "since": "yesterday"}, "since", "not a date and time"),
    ],
)
def test_what_cannot_be_typed_is_an_error_by_field(
    posted: dict[str, str], field: str, message: str
) -> None:
    _, errors = form_values(SCHEMA, form(**posted))
    assert message in errors[field]


def test_a_submission_is_shown_again_with_its_errors() -> None:
    fields = by_name(
        form_fields(SCHEMA, submitted=form(rows="many"), errors={"rows": "not a whole number"})
    )
    assert fields["rows"].value == "many"
    assert fields["rows"].error == "not a whole number"


def test_a_required_nullable_field_left_empty_is_null() -> None:
    schema = {
        "type": "object",
        "properties": {"at": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
        "required": ["at"],
    }
    assert form_values(schema, {}) == ({"at": None}, {})


def test_numbers_and_strings_in_one_enum_stay_apart() -> None:
    schema = {"type": "object", "properties": {"v": {"enum": ["5", 5, None]}}}
    (field,) = form_fields(schema)
    assert [value for value, _ in field.options] == ['"5"', "5", "null"]
    assert form_values(schema, form(v="5"))[0] == {"v": 5}
    assert form_values(schema, form(v='"5"'))[0] == {"v": "5"}


@pytest.mark.parametrize(
    "schema",
    [
        None,
        [],
        "not a schema",
        {"properties": "nope"},
        {"properties": {"x": "nope"}},
        {"properties": {"loop": {"$ref": "#/$defs/A"}}, "$defs": {"A": {"$ref": "#/$defs/A"}}},
        {"properties": {"far": {"$ref": "https://example.com/schema.json"}}},
    ],
)
def test_odd_or_hostile_schemas_give_plain_fields_or_none(schema: object) -> None:
    fields = form_fields(schema)  # type: ignore[arg-type]
    assert all(item.widget in ("json", "text", "number") for item in fields)


def test_a_schema_too_large_to_check_gives_no_fields() -> None:
    huge = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(6000)}}
    assert form_fields(huge) == []
