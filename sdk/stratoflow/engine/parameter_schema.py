"""`Flow.parameters`: the flow's parameter schema in Prefect's form (`ParameterSchema`:
an OpenAPI object schema with a title, a position and the docstring's description for
each parameter; `self`/`cls` left out; models under `definitions`)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PydanticUserError, TypeAdapter, create_model
from pydantic.errors import PydanticInvalidForJsonSchema, PydanticSchemaGenerationError

from stratoflow.engine.parameters import LenientJsonSchema

_CONFIG = ConfigDict(arbitrary_types_allowed=True)
_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params):\s*$")
_ENTRY = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SCHEMA_ERRORS = (
    TypeError,
    ValueError,
    PydanticUserError,
    PydanticInvalidForJsonSchema,
    PydanticSchemaGenerationError,
)


class ParameterSchema(BaseModel):
    """The JSON schema of a flow's parameters (Prefect's `ParameterSchema`)."""

    title: Literal["Parameters"] = "Parameters"
    type: Literal["object"] = "object"
    properties: dict[str, Any] = Field(default_factory=dict)
    required: list[str] = Field(default_factory=list)
    definitions: dict[str, Any] = Field(default_factory=dict)

    def model_dump_for_openapi(self) -> dict[str, Any]:
        dumped = self.model_dump(mode="python", exclude_none=True)
        if not dumped.get("required"):
            dumped.pop("required", None)
        return dumped


def parameter_schema(fn: Callable[..., Any]) -> ParameterSchema:
    """The schema of `fn`'s parameters; a type JSON Schema cannot describe becomes Any."""
    try:
        signature = inspect.signature(fn, eval_str=True)
    except (NameError, TypeError):
        signature = inspect.signature(fn)
    descriptions = parameter_docstrings(inspect.getdoc(fn))
    fields: dict[str, Any] = {}
    for position, param in enumerate(signature.parameters.values()):
        if param.name in ("self", "cls"):
            continue  # passed implicitly, not parameters a caller gives
        # A name pydantic's BaseModel already uses gets a suffix, aliased back.
        clashes = hasattr(BaseModel, param.name)
        name = f"{param.name}__" if clashes else param.name
        annotation = Any if param.annotation is param.empty else param.annotation
        field = Field(
            default=... if param.default is param.empty else param.default,
            title=param.name,
            description=descriptions.get(param.name),
            alias=param.name if clashes else None,
            json_schema_extra={"position": position},
        )
        if not _describable(name, annotation, field):
            annotation = Any
        fields[name] = (annotation, field)
    model = create_model("Parameters", __config__=_CONFIG, **fields)
    schema = TypeAdapter(model).json_schema(
        by_alias=True, ref_template="#/definitions/{model}", schema_generator=LenientJsonSchema
    )
    if "$defs" in schema:
        schema["definitions"] = schema.pop("$defs")
    return ParameterSchema(**schema)


def _describable(name: str, annotation: Any, field: Any) -> bool:
    try:
        definition: dict[str, Any] = {name: (annotation, field)}
        probe = create_model("CheckParameter", __config__=_CONFIG, **definition)
        TypeAdapter(probe).json_schema(schema_generator=LenientJsonSchema)
    except _SCHEMA_ERRORS:
        return False
    return True


def parameter_docstrings(docstring: str | None) -> dict[str, str]:
    """Parameter descriptions from a Google-style docstring's `Args:` section."""
    found: dict[str, str] = {}
    if not docstring:
        return found
    in_section = False
    current: str | None = None
    section_indent = entry_indent = 0
    for line in docstring.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if _SECTION.match(stripped):
            in_section, current, section_indent = True, None, indent
            continue
        if not in_section:
            continue
        if stripped and indent <= section_indent:
            in_section = False  # the next section (Returns:, Raises:, ...)
            continue
        entry = _ENTRY.match(stripped)
        if entry and (current is None or indent <= entry_indent):
            current, entry_indent = entry.group(1).lstrip("*"), indent
            found[current] = entry.group(2).strip()
        elif current is not None and stripped:
            found[current] = f"{found[current]} {stripped}".strip()
    return found
