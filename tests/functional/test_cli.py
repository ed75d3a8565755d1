"""`strato run` as a user runs it: real entrypoint files, real exit codes and output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stratoflow.cli import app
from stratoflow.testing import stratoflow_test_harness

EXAMPLES = Path(__file__).parents[2] / "examples"
runner = CliRunner()


@pytest.fixture(autouse=True)
def harness():
    with stratoflow_test_harness() as h:
        yield h


def strato(*args: str):
    return runner.invoke(app, list(args))


def test_run_prints_state_result_and_task_runs():
    result = strato("run", f"{EXAMPLES}/fanout.py:fan_out", "--param", "items=3")
    assert result.exit_code == 0, result.output
    assert "finished in Completed" in result.output
    assert "Result: 10" in result.output
    assert "score-2" in result.output and "total-0" in result.output


def test_run_json_is_machine_readable():
    result = strato("run", f"{EXAMPLES}/fanout.py:fan_out", "-p", "items=2", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["state"]["name"] == "Completed"
    assert document["result"] == 2
    assert document["parameters"] == {"items": 2, "weight": 2}
    assert [t["name"] for t in document["task_runs"]] == ["score-0", "score-1", "total-0"]
    assert len(document["task_runs"][2]["upstream"]) == 2


def test_failed_run_exits_1_with_the_reason():
    result = strato("run", f"{EXAMPLES}/failing.py:nightly_report")
    assert result.exit_code == 1
    assert "negative amounts in batch: [-1]" in result.output


def test_params_json_and_param_override():
    result = strato(
        "run", f"{EXAMPLES}/failing.py:nightly_report", "--params", '{"batch": [1, 2]}', "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["result"] == 3


def test_invalid_parameter_fails_the_run_and_names_the_parameter():
    result = strato("run", f"{EXAMPLES}/fanout.py:fan_out", "-p", "items=abc")
    assert result.exit_code == 1
    assert "items: Input should be a valid integer" in result.output


@pytest.mark.parametrize(
    ("entrypoint", "message"),
    [
        ("examples/fanout.py", "must look like 'path/to/file.py:flow_function'"),
        (f"{EXAMPLES}/missing.py:flow", "no file at"),
        (f"{EXAMPLES}/fanout.py:nope", "has no 'nope'. Flows in that file: fan_out"),
        (f"{EXAMPLES}/fanout.py:score", "'score' is not a flow; decorate it with @flow"),
    ],
)
def test_bad_entrypoints_give_one_line_errors(entrypoint: str, message: str):
    result = strato("run", entrypoint)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_entrypoint_that_raises_at_import(tmp_path: Path):
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom at import')\n")
    result = strato("run", f"{broken}:flow")
    assert result.exit_code == 2
    assert "importing broken.py raised RuntimeError: boom at import" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "items"], "must look like name=value"),
        (["--params", "{not json"], "--params is not valid JSON"),
        (["--params", "[1, 2]"], "--params must be a JSON object"),
    ],
)
def test_bad_parameter_syntax(args: list[str], message: str):
    result = strato("run", f"{EXAMPLES}/fanout.py:fan_out", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_version():
    result = strato("version")
    assert result.exit_code == 0
    assert result.output.strip() == "0.1.0"


def test_deploy_of_a_missing_directory_names_it_and_says_what_to_pass(tmp_path: Path):
    missing = tmp_path / "missing" / "dir"

    result = strato("deploy", str(missing))

    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: The directory {missing} does not exist. Pass the project directory that "
        "contains stratoflow.yaml.\n"
    )


def test_deploy_of_a_directory_without_stratoflow_yaml(tmp_path: Path):
    result = strato("deploy", str(tmp_path))

    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: No stratoflow.yaml at {tmp_path}. Create one with a `deployments:` list "
        "(see docs/deployments.md).\n"
    )


def test_deploy_of_a_missing_config_file_calls_it_a_file(tmp_path: Path):
    result = strato("deploy", str(tmp_path / "stratoflow.yml"))

    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: The file {tmp_path / 'stratoflow.yml'} does not exist. Pass the project "
        "directory that contains stratoflow.yaml.\n"
    )
