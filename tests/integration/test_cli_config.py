"""`strato config show` and `strato config from-stack` (a stack in the emulator)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from stratoflow.cli import app
from stratoflow.resources import STACK_OUTPUTS, UI_URL_OUTPUT, UI_URL_VARIABLE
from stratoflow.settings import get_settings

runner = CliRunner()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "STRATOFLOW_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("STRATOFLOW_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    get_settings.cache_clear()
    with mock_aws():
        yield
    get_settings.cache_clear()


def stack_with(outputs: dict[str, str]) -> str:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName="Stratoflow-test", TemplateBody=json.dumps(template)
    )
    return "Stratoflow-test"


def test_from_stack_prints_exports_for_every_output(aws: None):
    values = {key: f"value-of-{key}" for key in STACK_OUTPUTS}
    stack = stack_with(values)
    result = runner.invoke(app, ["config", "from-stack", stack])
    assert result.exit_code == 0, result.output
    for key, variable in STACK_OUTPUTS.items():
        assert f"export {variable}=value-of-{key}" in result.output
    assert "export STRATOFLOW_BACKEND=aws" in result.output


def test_from_stack_json(aws: None):
    stack = stack_with({key: key.lower() for key in STACK_OUTPUTS})
    result = runner.invoke(app, ["config", "from-stack", stack, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["STRATOFLOW_TABLE_NAME"] == "tablename"


def test_from_stack_exports_the_ui_url_when_the_stack_has_one(aws: None):
    values = {key: f"value-of-{key}" for key in STACK_OUTPUTS}
    url = "https://d111111abcdef8.cloudfront.net"
    stack = stack_with({**values, UI_URL_OUTPUT: url})
    result = runner.invoke(app, ["config", "from-stack", stack])
    assert result.exit_code == 0, result.output
    assert f"export {UI_URL_VARIABLE}={url}" in result.output
    document = json.loads(runner.invoke(app, ["config", "from-stack", stack, "--json"]).stdout)
    assert document[UI_URL_VARIABLE] == url


def test_a_stack_without_the_ui_exports_no_ui_url(aws: None):
    stack = stack_with({key: f"value-of-{key}" for key in STACK_OUTPUTS})  # -c ui=false
    result = runner.invoke(app, ["config", "from-stack", stack])
    assert result.exit_code == 0, result.output
    assert UI_URL_VARIABLE not in result.output


def test_unknown_stack_is_one_line(aws: None):
    result = runner.invoke(app, ["config", "from-stack", "nope"])
    assert result.exit_code == 2
    assert "Cannot read stack 'nope'" in result.output


def test_a_stack_that_is_not_stratoflow(aws: None):
    stack = stack_with({"Something": "else"})
    result = runner.invoke(app, ["config", "from-stack", stack])
    assert result.exit_code == 2
    assert "is it a stratoflow stack" in result.output


def test_config_show_lists_variables(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STRATOFLOW_TABLE_NAME", "my-table")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["config", "show", "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["STRATOFLOW_TABLE_NAME"] == "my-table"
