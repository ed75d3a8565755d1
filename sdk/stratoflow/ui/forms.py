"""HTML forms generated from a JSON schema: a deployment's parameters ("Run"), the input
a paused run waits for ("Resume").

`form_fields(schema, values)` describes one field per top-level property for the
template macro `_forms.html:schema_fields` (an input of the right type with HTML5
validation attributes: `required`, `min`/`max`, `step`, `minlength`/`maxlength`; an
`enum` as a select; a boolean as a checkbox; arrays, objects and anything else as a JSON
textarea). `form_values(schema, form)` turns the posted form back into typed values, or
per-field errors. The browser's checks are a convenience: the caller then validates the
values with the same SDK code as the CLI (a deployment's parameter schema, a paused
run's input schema), which is the check that counts.

The schema may come from a worker (a paused run stores its input's schema), so it is
untrusted: it is cleaned by `stratoflow.input.schemas.safe_schema` first, `$ref`s are
followed only inside it and only a few levels, and every string of it is escaped by the
template like any other data. A constraint of a field's own keywords that is not a
number is ignored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from stratoflow.input.schemas import UnsafeSchema, safe_schema

FIELD_PREFIX = "param."
"""Form field names are `param.<property>`: apart from `csrf_token` and the form's own."""
MAX_REF_DEPTH = 8
Widget = Literal["text", "number", "checkbox", "select", "json", "datetime"]
_MISSING: Any = object()


@dataclass(frozen=True)
class FormField:
    """One input of a generated form, as the template renders it."""

    name: str
    """The property's name; the input's is `FIELD_PREFIX + name` (`input_name`)."""
    label: str
    widget: Widget
    required: bool
    value: str = ""
    """The input's text: the submitted one after an error, else the default as text."""
    checked: bool = False
    options: tuple[tuple[str, str], ...] = ()
    """A select's (value, label) pairs; each value is the enum member as JSON."""
    attributes: Mapping[str, str] = field(default_factory=dict)
    """HTML5 validation attributes (`min`, `max`, `step`, `minlength`, `maxlength`)."""
    description: str | None = None
    nullable: bool = False
    error: str | None = None

    @property
    def input_name(self) -> str:
        return FIELD_PREFIX + self.name

    @property
    def input_id(self) -> str:
        return "field-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in self.name)


@dataclass(frozen=True)
class _Kind:
    """What a property's schema asks for, with `anyOf [X, null]` and `$ref` resolved."""

    schema: Mapping[str, Any]
    nullable: bool


def clean_schema(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """The schema made safe to read (an unusable one: no properties, a single JSON box)."""
    if not isinstance(schema, Mapping):
        return {}
    try:
        return safe_schema(dict(schema))
    except UnsafeSchema:
        return {}


def form_fields(
    schema: Mapping[str, Any] | None,
    values: Mapping[str, Any] | None = None,
    *,
    submitted: Mapping[str, list[str]] | None = None,
    errors: Mapping[str, str] | None = None,
) -> list[FormField]:
    """The fields of `schema`'s top-level properties, in its order. Initial values are
    `values`, else each property's default; after a refused submission, `submitted` (the
    posted form) is shown again with `errors` by property name."""
    cleaned = clean_schema(schema)
    properties = cleaned.get("properties")
    if not isinstance(properties, Mapping):
        return []
    listed = cleaned.get("required")
    required = {str(n) for n in listed} if isinstance(listed, list) else set()
    raw_properties = schema.get("properties") if isinstance(schema, Mapping) else None
    fields = []
    for name, prop in properties.items():
        if not isinstance(prop, Mapping):
            continue
        kind = _kind(prop, cleaned)
        raw = raw_properties.get(name) if isinstance(raw_properties, Mapping) else None
        if kind.schema.get("type") == "string" and _is_date_time(raw):
            kind = _Kind({**kind.schema, "format": "date-time"}, kind.nullable)
        initial = (values or {}).get(name, prop.get("default", _MISSING))
        fields.append(
            _field(
                str(name),
                prop,
                kind,
                required=name in required,
                initial=initial,
                submitted=None if submitted is None else submitted.get(FIELD_PREFIX + name, []),
                error=(errors or {}).get(name),
            )
        )
    return fields


def _kind(prop: Mapping[str, Any], root: Mapping[str, Any], depth: int = 0) -> _Kind:
    options = prop.get("anyOf") or prop.get("oneOf")
    if isinstance(options, list):
        real = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
        if len(real) == 1 and len(options) == 2 and isinstance(real[0], Mapping):
            inner = _kind(real[0], root, depth + 1)
            return _Kind(inner.schema, True)
    ref = prop.get("$ref")
    if isinstance(ref, str) and depth < MAX_REF_DEPTH:
        target = _resolve(ref, root)
        if target is not None:
            merged = {**target, **{k: v for k, v in prop.items() if k != "$ref"}}
            return _kind(merged, root, depth + 1)
    types = prop.get("type")
    if isinstance(types, list) and "null" in types and len(types) == 2:
        other = next(t for t in types if t != "null")
        return _Kind({**prop, "type": other}, True)
    return _Kind(prop, False)


def _is_date_time(raw: Any) -> bool:
    """Whether the property (as written, `anyOf` members included) is a `date-time`
    string: safe_schema drops the `format` annotation, which only picks the input here."""
    if not isinstance(raw, Mapping):
        return False
    members = raw.get("anyOf") or raw.get("oneOf") or []
    candidates = [raw, *(members if isinstance(members, list) else [])]
    return any(isinstance(c, Mapping) and c.get("format") == "date-time" for c in candidates)


def _resolve(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any] | None:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, Mapping) else None


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return value


def _field(
    name: str,
    prop: Mapping[str, Any],
    kind: _Kind,
    *,
    required: bool,
    initial: Any,
    submitted: list[str] | None,
    error: str | None,
) -> FormField:
    schema = kind.schema
    kind_type = schema.get("type")
    title = prop.get("title") if isinstance(prop.get("title"), str) else None
    description = prop.get("description") if isinstance(prop.get("description"), str) else None
    common: dict[str, Any] = {
        "name": name,
        "label": title or name,
        "required": required,
        "description": description,
        "nullable": kind.nullable,
        "error": error,
    }
    typed = submitted is None
    text = submitted[-1] if submitted else ""
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        options = tuple((_enum_value(v), str(v)) for v in enum)
        chosen = _enum_value(initial) if typed and initial is not _MISSING else text
        return FormField(widget="select", options=options, value=chosen, **common)
    if kind_type == "boolean":
        checked = initial is True if typed else bool(submitted)
        return FormField(widget="checkbox", checked=checked, **{**common, "required": False})
    if kind_type in ("integer", "number"):
        attributes = {"step": "1" if kind_type == "integer" else "any"}
        for keyword, attribute in (("minimum", "min"), ("maximum", "max")):
            bound = _number(schema.get(keyword))
            if bound is not None:
                attributes[attribute] = str(bound)
        shown = _text(initial) if typed else text
        return FormField(widget="number", value=shown, attributes=attributes, **common)
    if kind_type == "string" and schema.get("format") == "date-time":
        shown = _datetime_local(initial) if typed else text
        return FormField(widget="datetime", value=shown, **common)
    if kind_type == "string":
        attributes = {}
        for keyword, attribute in (("minLength", "minlength"), ("maxLength", "maxlength")):
            bound = _number(schema.get(keyword))
            if isinstance(bound, int) and bound >= 0:
                attributes[attribute] = str(bound)
        shown = (initial if isinstance(initial, str) else "") if typed else text
        return FormField(widget="text", value=shown, attributes=attributes, **common)
    shown = (
        ("" if initial is _MISSING else json.dumps(initial, indent=2, default=str))
        if typed
        else text
    )
    return FormField(widget="json", value=shown, **common)


def _enum_value(value: Any) -> str:
    """An option's value: the enum member as JSON (`"a"`, `5`), so that a string "5" and
    the number 5 stay apart."""
    return json.dumps(value)


def _text(value: Any) -> str:
    if value is _MISSING or value is None or isinstance(value, bool):
        return ""
    return str(value)


def _datetime_local(value: Any) -> str:
    """An ISO time as `<input type="datetime-local">` wants it (UTC, no offset)."""
    if not isinstance(value, str):
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds")


def form_values(
    schema: Mapping[str, Any] | None, form: Mapping[str, list[str]]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The posted form as typed values (a property left empty is left out: its default
    applies) and the errors by property name. The values still need the caller's check
    against the schema (the SDK's, as the CLI's)."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for item in form_fields(schema):
        raw = form.get(item.input_name, [])
        text = raw[-1].strip() if raw else ""
        if item.widget == "checkbox":
            values[item.name] = bool(raw)
            continue
        if not text:
            if item.required and not item.nullable:
                errors[item.name] = "Required."
            elif item.required:
                values[item.name] = None
            continue
        try:
            values[item.name] = _parse(item, text)
        except ValueError as exc:
            errors[item.name] = str(exc)
    return values, errors


def _parse(item: FormField, text: str) -> Any:
    if item.widget == "select":
        allowed = {value for value, _ in item.options}
        if text not in allowed:
            raise ValueError("Choose one of the listed values.")
        return json.loads(text)
    if item.widget == "number":
        if item.attributes.get("step") == "1":
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"{text!r} is not a whole number.") from None
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number.") from None
        if not math.isfinite(number):
            raise ValueError(f"{text!r} is not a finite number.")
        whole = number.is_integer() and not any(c in text for c in ".eE")
        return int(number) if whole else number
    if item.widget == "datetime":
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a date and time.") from None
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
        return moment.isoformat()
    if item.widget == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).") from None
    return text
