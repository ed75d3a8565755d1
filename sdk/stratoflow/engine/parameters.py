"""Flow parameter validation and coercion with pydantic, from the function's type hints."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict, Field, PydanticUserError, ValidationError, create_model
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, JsonSchemaWarningKind

from stratoflow.exceptions import ParameterValidationError

_SKIPPED = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class LenientJsonSchema(GenerateJsonSchema):
    """A type JSON Schema cannot describe (an arbitrary class) accepts anything; a default
    that is not JSON is left out, without a warning."""

    ignored_warning_kinds: set[JsonSchemaWarningKind] = {
        "skipped-choice",
        "non-serializable-default",
    }

    def handle_invalid_for_json_schema(self, schema: object, error_info: str) -> JsonSchemaValue:
        return {}


class ParameterValidator:
    """Validates a flow's parameters against a pydantic model built from its signature.

    Fields are named positionally and aliased to the parameter names, so parameters
    such as `json` or `copy` do not clash with pydantic's own attributes.
    """

    def __init__(
        self, flow_name: str, signature: inspect.Signature, module: str | None = None
    ) -> None:
        self.flow_name = flow_name
        self._fields: dict[str, str] = {}
        definitions: dict[str, Any] = {}
        for index, (name, param) in enumerate(signature.parameters.items()):
            if param.kind in _SKIPPED:
                continue
            annotation = Any if param.annotation is inspect.Parameter.empty else param.annotation
            default = ... if param.default is inspect.Parameter.empty else param.default
            field_name = f"p{index}"
            self._fields[name] = field_name
            definitions[field_name] = (annotation, Field(default, alias=name))
        self._model = create_model(
            f"{flow_name}-parameters",
            __config__=ConfigDict(arbitrary_types_allowed=True, extra="ignore"),
            # String annotations (`from __future__ import annotations`) are resolved in
            # the flow's module, when first used.
            __module__=module or __name__,
            **definitions,
        )

    def json_schema(self) -> dict[str, Any] | None:
        """The parameters' JSON Schema (draft 2020-12), by parameter name; None when the
        type hints cannot be resolved (validation then reports it, when the run starts)."""
        try:
            schema: dict[str, Any] = self._model.model_json_schema(
                by_alias=True, schema_generator=LenientJsonSchema
            )
        except PydanticUserError:
            return None
        return schema

    def validate(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        try:
            model = self._model.model_validate(dict(parameters))
        except PydanticUserError as exc:
            raise ParameterValidationError(
                f"The type hints of flow {self.flow_name!r} could not be resolved: {exc.message} "
                "Define the types at module level, or set validate_parameters=False."
            ) from None
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                where = ".".join(str(part) for part in err["loc"]) or "parameters"
                problems.append(f"{where}: {err['msg']} (got {err['input']!r})")
            listing = "\n  - ".join(problems)
            raise ParameterValidationError(
                f"Flow {self.flow_name!r} received invalid parameters:\n  - {listing}"
            ) from None
        validated = dict(parameters)
        for name, field_name in self._fields.items():
            validated[name] = getattr(model, field_name)
        return validated
