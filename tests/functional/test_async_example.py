"""examples/async_flow.py runs and does what its docstring says (tests/functional/
test_examples.py covers the other examples the same way)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stratoflow.cli import app
from stratoflow.entrypoints import load_flow
from stratoflow.testing import TestHarness, stratoflow_test_harness

EXAMPLE = Path(__file__).parents[2] / "examples" / "async_flow.py"


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


def test_the_async_example_gathers_its_fetches_and_retries_the_flaky_one(
    harness: TestHarness,
) -> None:
    word_count = load_flow(f"{EXAMPLE}:word_count")
    assert word_count.isasync
    assert asyncio.run(word_count()) == 34
    runs = {t.name: t for t in harness.task_runs()}
    assert sorted(runs) == ["count_words-0", "fetch-0", "fetch-1", "fetch-2"]
    assert sorted(t.run_count for t in runs.values()) == [1, 1, 1, 2]
    assert harness.clock.sleeps == [0.1]  # type: ignore[attr-defined]
    assert "Fetched 3 pages, 34 words" in harness.log_messages()


def test_the_async_example_script_exits_zero() -> None:
    completed = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.splitlines()[-1] == "34"
    assert "finished: Completed" in completed.stdout


def test_strato_run_runs_the_async_flow_to_its_end(harness: TestHarness) -> None:
    result = CliRunner().invoke(
        app, ["run", f"{EXAMPLE}:word_count", "--params", '{"pages": ["intro", "gather"]}']
    )
    assert result.exit_code == 0, result.output
    assert "finished in Completed" in result.output
    assert "Result: 23" in result.output
