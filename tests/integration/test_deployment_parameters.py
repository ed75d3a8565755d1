"""A run's parameters are checked against the deployment's parameter schema before the run
exists: what a person sees from `strato deployment run`, `run_deployment()` and `strato
deploy`, and that nothing was created (docs/deployments.md)."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from _deploy_fixtures import (  # noqa: F401 - `installation` is a fixture
    EXAMPLES,
    Installation,
    installation,
)
from typer.testing import CliRunner

from stratoflow import runs
from stratoflow.cli import app
from stratoflow.deployments.deploy import deploy_project
from stratoflow.deployments.runs import run_deployment
from stratoflow.deployments.store import UnknownDeployment
from stratoflow.exceptions import ParameterValidationError
from stratoflow.workers.execute import execute_flow_run

runner = CliRunner()

TYPED = """
from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from stratoflow import flow


class Window(BaseModel):
    start: int
    end: int


@flow
def report(day: date, rows: int = 10, ids: list[int] = [], window: Window | None = None) -> str:
    return f"{day.isoformat()} {rows} {ids} {window}"
"""


def typed_project(root: Path, parameters: str = "{rows: 5}") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "stratoflow.yaml").write_text(
        textwrap.dedent(
            f"""
            deployments:
              - name: report
                entrypoint: flows.py:report
                parameters: {parameters}
            """
        )
    )
    (root / "flows.py").write_text(TYPED)
    return root


def assert_nothing_created(found: Installation, deployment: str) -> None:
    assert found.services.backend.list_flow_runs_of_deployment(deployment) == []
    assert found.sent == []  # no SQS message either


def test_a_wrongly_typed_param_is_one_line_from_the_cli_and_creates_nothing(
    installation: Installation,
) -> None:
    deploy_project(EXAMPLES)

    result = runner.invoke(app, ["deployment", "run", "fan-out", "--param", "items=abc"])

    assert result.exit_code == 2
    assert result.stderr == (
        "Error: Deployment 'fan-out': parameter items: 'abc' is not of type 'integer'. "
        "Give each parameter a value of the type its flow declares "
        "(`strato deployment inspect fan-out` shows the parameter_schema).\n"
    )
    assert result.stdout == ""
    assert_nothing_created(installation, "fan-out")


def test_the_deployment_stores_the_json_schema_of_its_flows_parameters(
    installation: Installation,
) -> None:
    deploy_project(EXAMPLES)

    schema = installation.platform.deployments.get("fan-out").parameter_schema

    assert schema is not None
    assert schema["properties"] == {
        "items": {"default": 8, "title": "Items", "type": "integer"},
        "weight": {"default": 2, "title": "Weight", "type": "integer"},
    }


@pytest.mark.parametrize(
    ("parameters", "problem"),
    [
        ({"day": "2026-11-21", "rows": "many"}, "parameter rows: 'many' is not of type 'integer'"),
        (
            {"day": "2026-11-21", "ids": [1, "two"]},
            "parameter ids.1: 'two' is not of type 'integer'",
        ),
        (
            {"day": "2026-11-21", "window": {"start": 1, "end": "later"}},
            "parameter window.end: 'later' is not of type 'integer'",
        ),
        ({"day": 20261121}, "parameter day: 20261121 is not of type 'string'"),
        (
            {"day": "2026-11-21", "window": 5},
            "parameter window: 5 is not of type 'object' or 'null'",
        ),
    ],
)
def test_run_deployment_names_the_parameter_and_what_was_expected(
    installation: Installation, tmp_path: Path, parameters: dict[str, Any], problem: str
) -> None:
    deploy_project(typed_project(tmp_path / "typed"))

    with pytest.raises(ParameterValidationError) as raised:
        run_deployment("report", parameters, timeout=0)

    assert str(raised.value) == (
        f"Deployment 'report': {problem}. Give each parameter a value of the type its flow "
        "declares (`strato deployment inspect report` shows the parameter_schema)."
    )
    assert_nothing_created(installation, "report")


def test_parameters_are_checked_merged_with_the_deployments_as_json(
    installation: Installation, tmp_path: Path
) -> None:
    deploy_project(typed_project(tmp_path / "typed"))

    # Python values are checked in the form the worker reads them: JSON.
    run = run_deployment(
        "report", {"day": date(2026, 11, 21), "window": {"start": 1, "end": 2}}, timeout=0
    )

    assert run.parameters == {"rows": 5, "day": "2026-11-21", "window": {"start": 1, "end": 2}}
    assert execute_flow_run(run.id).is_completed()
    assert runs.read_result(runs.read_flow_run(run.id)) == "2026-11-21 5 [] start=1 end=2"


def test_a_deployment_parameter_pydantic_would_coerce_is_refused_at_deploy_time(
    installation: Installation, tmp_path: Path
) -> None:
    # pydantic accepts "5" for an int, the JSON Schema every run is checked against does not.
    root = typed_project(tmp_path / "quoted", parameters="{rows: '5'}")

    with pytest.raises(ParameterValidationError) as raised:
        deploy_project(root)

    assert str(raised.value) == (
        "Deployment 'report' (parameters): parameter rows: '5' is not of type 'integer'. "
        "Runs check their parameters as JSON against the flow's type hints: write each value "
        "with its JSON type (5, not '5')."
    )
    with pytest.raises(UnknownDeployment):
        installation.platform.deployments.get("report")
