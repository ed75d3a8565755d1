"""A run's parameters checked against its deployment's parameter schema, before the run
exists (as Prefect enforces a deployment's parameter schema).

`strato deploy` stores the JSON Schema of the flow's parameters, made by pydantic from the
type hints (`Flow.parameter_schema`). Whoever creates a run of the deployment (`strato
deployment run`, `run_deployment()`, an automation, the scheduler) checks the parameters
against it with `jsonschema`, as JSON: the form the worker reads them in. The worker still
validates them with pydantic, against the flow's own type hints, when the run starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from stratoflow.exceptions import ParameterValidationError

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError


def parameter_problems(schema: Mapping[str, Any], parameters: Mapping[str, Any]) -> list[str]:
    """`name: what is wrong` for each parameter that does not match `schema`. Parameters
    missing from the top level are not reported (a deployment's own check names them)."""
    # Loaded on the first check, not at import: the scheduler and the workers import this
    # module at start, and jsonschema is ~30 ms of a Lambda's cold start.
    from jsonschema import Draft202012Validator

    document = to_jsonable_python(dict(parameters), fallback=repr)
    validator = Draft202012Validator(dict(schema))
    problems = []
    for error in sorted(
        validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path]
    ):
        if error.validator == "required" and not error.path:
            continue
        problems.append(_describe(error))
    return problems


RUN_HINT = (
    "Give each parameter a value of the type its flow declares (`strato deployment inspect "
    "{name}` shows the parameter_schema)."
)
DEPLOY_HINT = (
    "Runs check their parameters as JSON against the flow's type hints: write each value "
    "with its JSON type (5, not '5')."
)


def check_parameter_types(
    deployment_name: str,
    schema: Mapping[str, Any] | None,
    parameters: Mapping[str, Any],
    *,
    hint: str = RUN_HINT,
) -> None:
    """Raise ParameterValidationError, in one line, when a parameter does not match."""
    if not schema:
        return
    problems = parameter_problems(schema, parameters)
    if problems:
        raise ParameterValidationError(
            f"Deployment {deployment_name!r}: {'; '.join(problems)}. "
            + hint.format(name=deployment_name)
        )


def _describe(error: ValidationError) -> str:
    """`items: 'abc' is not of type 'integer'`; for a union (`int | None`), the alternatives
    (`5 is not of type 'string' or 'null'`), or the problem inside the closest one."""
    from jsonschema.exceptions import best_match  # loaded with the validator

    if error.context:
        closest = best_match([error])
        if len(closest.absolute_path) > len(error.absolute_path):  # inside an alternative
            return f"{_where(closest)}: {closest.message}"
        expected = [e.validator_value for e in error.context if e.validator == "type"]
        if len(expected) == len(error.context):
            alternatives = " or ".join(repr(kind) for kind in expected)
            return f"{_where(error)}: {error.instance!r} is not of type {alternatives}"
    return f"{_where(error)}: {error.message}"


def _where(error: ValidationError) -> str:
    path = ".".join(str(part) for part in error.absolute_path)
    return f"parameter {path}" if path else "parameters"
