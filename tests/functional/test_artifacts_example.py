"""examples/artifacts_flow.py runs as its docstring says: a table artifact from its
task, a markdown artifact from the flow, and a threshold variable with a default."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stratoflow.artifacts import Artifact
from stratoflow.blocks import Secret
from stratoflow.cli import app
from stratoflow.entrypoints import load_flow
from stratoflow.testing import TestHarness, stratoflow_test_harness
from stratoflow.variables import Variable

EXAMPLE = Path(__file__).parents[2] / "examples" / "artifacts_flow.py"


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        Secret(value="s3cr3t-token").save("report-publish-token")  # what an operator does
        yield h


def test_the_report_uses_the_default_then_the_variable(harness: TestHarness) -> None:
    report = load_flow(f"{EXAMPLE}:regional_report")
    assert report() == ["us-east-1", "ap-south-1"]  # default threshold 100
    run = harness.last_flow_run()
    task_run, published = sorted(harness.task_runs(run.id), key=lambda t: t.name)
    assert task_run.name.startswith("count_rows") and published.name.startswith("publish")
    assert published.state is not None and published.state.is_completed()
    # The secret is used, never logged.
    assert not any("s3cr3t-token" in entry.message for entry in harness.logs(run.id))
    table = Artifact.get("regional-rows")
    summary = Artifact.get("regional-summary")
    assert table is not None and summary is not None
    assert (table.type, table.task_run_id, table.flow_run_id) == ("table", task_run.id, run.id)
    assert json.loads(table.data)[0] == {"region": "eu-west-1", "rows": 120}
    assert summary.type == "markdown" and "below 100 rows" in summary.data

    Variable.set("report_threshold", 50)
    assert report() == ["ap-south-1"]
    latest = Artifact.get("regional-summary")
    assert latest is not None and latest.id != summary.id and "below 50 rows" in latest.data


def test_strato_run_runs_it(harness: TestHarness) -> None:
    result = CliRunner().invoke(app, ["run", f"{EXAMPLE}:regional_report"])
    assert result.exit_code == 0, result.output
    assert "finished in Completed" in result.output
