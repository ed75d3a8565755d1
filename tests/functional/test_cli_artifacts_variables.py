"""`strato artifact ls|inspect` and `strato variable ls|get|set|delete|inspect` as a user
runs them (CliRunner, memory backend). Every string an artifact or a variable holds was
written by a flow, so it must be shown as written: never as rich markup."""

from __future__ import annotations

import json
from collections.abc import Iterator
from uuid import UUID

import pytest
from typer.testing import CliRunner, Result

from stratoflow import flow
from stratoflow.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
)
from stratoflow.cli import app
from stratoflow.clock import FakeClock
from stratoflow.testing import TestHarness, stratoflow_test_harness
from stratoflow.variables import Variable

runner = CliRunner()
MARKUP = "[bold]loud[/bold] [link=https://evil.example]click[/link] <script>alert(1)</script>"


@pytest.fixture(autouse=True)
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


def strato(*args: str) -> Result:
    return runner.invoke(app, list(args))


def _advance(harness: TestHarness) -> None:
    clock = harness.clock
    assert isinstance(clock, FakeClock)
    clock.advance(1)


def test_inspect_shows_markup_and_html_as_written(harness: TestHarness) -> None:
    create_markdown_artifact(MARKUP, key="report", description="[red]desc[/red]")
    result = strato("artifact", "inspect", "report")
    assert result.exit_code == 0, result.output
    assert "[bold]loud[/bold]" in result.output
    assert "[link=https://evil.example]click[/link]" in result.output
    assert "<script>alert(1)</script>" in result.output
    assert "[red]desc[/red]" in result.output


def test_ls_shows_keys_descriptions_and_types_as_written(harness: TestHarness) -> None:
    create_markdown_artifact("x", key="a", description="[i]d[/i]")
    result = strato("artifact", "ls")
    assert result.exit_code == 0, result.output
    assert "[i]d[/i]" in result.output
    assert "markdown" in result.output


def test_table_cells_and_headers_are_shown_as_written(harness: TestHarness) -> None:
    create_table_artifact([{"[i]col[/i]": "[bold]cell[/bold]", "n": 1}], key="t")
    result = strato("artifact", "inspect", "t")
    assert result.exit_code == 0, result.output
    assert "[i]col[/i]" in result.output
    assert "[bold]cell[/bold]" in result.output


def test_inspect_shows_every_version_newest_first_and_by_id(harness: TestHarness) -> None:
    first = create_markdown_artifact("version one", key="nightly")
    _advance(harness)
    create_markdown_artifact("version two", key="nightly")
    result = strato("artifact", "inspect", "nightly")
    assert result.exit_code == 0, result.output
    assert result.output.index("version two") < result.output.index("version one")
    only_latest = strato("artifact", "inspect", "nightly", "--limit", "1")
    assert "version one" not in only_latest.output
    by_id = strato("artifact", "inspect", str(first), "--json")
    document = json.loads(by_id.stdout)
    assert [d["data"] for d in document] == ["version one"]
    assert document[0]["id"] == str(first)


def test_ls_latest_all_key_and_flow_run_filters(harness: TestHarness) -> None:
    @flow
    def publish() -> UUID:
        return create_link_artifact("https://x.example", key="in-run")

    in_run = publish()
    run_id = harness.last_flow_run().id
    _advance(harness)
    create_markdown_artifact("old", key="k")
    _advance(harness)
    newest = create_markdown_artifact("new", key="k")
    _advance(harness)
    create_progress_artifact(50)

    def ids(*args: str) -> list[str]:
        result = strato("artifact", "ls", "--json", *args)
        assert result.exit_code == 0, result.output
        return [d["id"] for d in json.loads(result.stdout)]

    assert ids() == [str(newest), str(in_run)]  # latest of each key, keyed only
    assert len(ids("--all")) == 4
    assert len(ids("--key", "k")) == 2
    assert ids("--flow-run", run_id) == [str(in_run)]


def test_progress_is_shown_as_a_percentage(harness: TestHarness) -> None:
    create_progress_artifact(42.5, key="load")
    result = strato("artifact", "inspect", "load")
    assert "progress: 42.5%" in result.output


def test_unknown_artifacts_and_bad_keys_are_one_line_errors() -> None:
    missing = strato("artifact", "inspect", "nope")
    assert missing.exit_code == 2
    assert "No artifact with key or id 'nope'" in missing.output
    bad = strato("artifact", "inspect", "[bold]Bad")
    assert bad.exit_code == 2
    assert "[bold]Bad" in bad.output  # the name is quoted as typed, not rendered
    assert strato("artifact", "ls", "--key", "Bad Key").exit_code == 2
    assert "No artifacts." in strato("artifact", "ls").output


def test_variable_set_get_ls_inspect_delete() -> None:
    assert strato("variable", "set", "batch_size", "500").exit_code == 0
    assert strato("variable", "set", "mode", "fast", "--tag", "etl").exit_code == 0
    assert Variable.get("batch_size") == 500  # JSON when it parses
    assert Variable.get("mode") == "fast"  # else the text
    got = strato("variable", "get", "batch_size")
    assert got.exit_code == 0 and got.stdout.strip() == "500"
    listed = json.loads(strato("variable", "ls", "--json").stdout)
    assert [(v["name"], v["value"], v["tags"]) for v in listed] == [
        ("batch_size", 500, []),
        ("mode", "fast", ["etl"]),
    ]
    inspected = json.loads(strato("variable", "inspect", "mode", "--json").stdout)
    assert inspected["value"] == "fast"
    deleted = strato("variable", "delete", "mode")
    assert deleted.exit_code == 0 and "Deleted variable 'mode'" in deleted.output
    assert Variable.get("mode") is None
    assert strato("variable", "unset", "batch_size").exit_code == 0  # Prefect's verb


def test_variable_set_needs_overwrite_for_an_existing_name() -> None:
    strato("variable", "set", "x", "1")
    refused = strato("variable", "set", "x", "2")
    assert refused.exit_code == 2
    assert "already exists. Use `--overwrite`" in refused.output
    assert strato("variable", "set", "x", "2", "--overwrite").exit_code == 0
    assert Variable.get("x") == 2


def test_variable_errors_are_one_line_and_values_shown_as_written() -> None:
    bad = strato("variable", "set", "Bad Name", "1")
    assert bad.exit_code == 2 and "lowercase letters" in bad.output
    missing = strato("variable", "get", "nope")
    assert missing.exit_code == 2 and "Variable 'nope' not found" in missing.output
    assert strato("variable", "delete", "nope").exit_code == 2
    Variable.set("shown", MARKUP)
    listed = strato("variable", "ls")
    assert "[bold]loud[/bold]" in listed.output
    got = strato("variable", "get", "shown")
    assert json.loads(got.stdout) == MARKUP
