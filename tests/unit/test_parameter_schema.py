"""The JSON Schema a deployment stores for its flow's parameters, and the check of a run's
parameters against it (stratoflow.deployments.parameter_schema)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from stratoflow import flow
from stratoflow.deployments.models import BundleInfo, Deployment
from stratoflow.deployments.parameter_schema import check_parameter_types, parameter_problems
from stratoflow.deployments.runs import check_parameters
from stratoflow.exceptions import ParameterValidationError


class Opaque:
    """A type JSON Schema cannot describe."""


@flow
def typed(n: int, ratio: float = 0.5, price: Decimal = Decimal("1.5"), label: str | None = None):
    return n


@flow
def opaque(thing: Opaque, fallback: Opaque = Opaque()) -> None:  # noqa: B008
    return None


def test_the_schema_describes_each_parameter_by_name() -> None:
    schema = typed.parameter_schema()

    assert schema is not None
    assert schema["required"] == ["n"]
    assert schema["properties"]["n"] == {"title": "N", "type": "integer"}
    assert parameter_problems(schema, {"n": 1, "ratio": 2, "price": "2.25", "label": None}) == []
    assert parameter_problems(schema, {"n": 1.5, "label": 3}) == [
        "parameter label: 3 is not of type 'string' or 'null'",
        "parameter n: 1.5 is not of type 'integer'",
    ]


def test_a_type_json_schema_cannot_describe_accepts_anything_and_warns_nothing() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a non-JSON default must not warn
        schema = opaque.parameter_schema()

    assert schema is not None
    assert parameter_problems(schema, {"thing": Opaque(), "fallback": 3}) == []


def test_no_schema_without_parameter_validation() -> None:
    unchecked = typed.with_options(validate_parameters=False)

    assert unchecked.parameter_schema() is None


def deployment(schema: dict[str, Any] | None) -> Deployment:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Deployment(
        name="typed",
        entrypoint="flows.py:typed",
        flow_name="typed",
        bundle=BundleInfo(bucket="b", key="k", sha256="0" * 64),
        parameter_names=("n", "ratio", "price", "label"),
        required_parameters=("n",),
        parameter_schema=schema,
        created=now,
        updated=now,
    )


def test_names_are_checked_before_types_and_missing_ones_are_named_once() -> None:
    with pytest.raises(ParameterValidationError) as raised:
        check_parameters(deployment(typed.parameter_schema()), {"ratio": "half"})

    assert str(raised.value) == "Deployment 'typed': missing required parameter(s) n."


def test_a_deployment_stored_without_a_schema_checks_names_only() -> None:
    check_parameters(deployment(None), {"n": "not checked here"})  # the worker does
    check_parameter_types("typed", None, {"n": "x"})
    check_parameter_types("typed", {}, {"n": "x"})


def test_type_hints_that_cannot_be_resolved_give_no_schema() -> None:
    @flow
    def unresolved(x: Undefined = 1) -> None:  # type: ignore[name-defined]  # noqa: F821
        return None

    assert unresolved.parameter_schema() is None
