"""The examples in examples/ run and do what their docstrings say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stratoflow.entrypoints import load_flow
from stratoflow.testing import stratoflow_test_harness

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture
def harness():
    with stratoflow_test_harness() as h:
        yield h


def test_etl_retries_extract_and_caches_transform(harness):
    etl = load_flow(f"{EXAMPLES}/etl.py:etl")
    assert etl(rows=5) == 120
    first = harness.task_runs()
    assert [t.run_count for t in first] == [2, 1, 1]
    assert harness.clock.sleeps == [0.2]
    assert etl(rows=5) == 120
    assert [t.state.name for t in harness.task_runs()] == ["Completed", "Cached", "Completed"]
    assert "Extracted 5 records" in harness.log_messages()


def test_fan_out_maps_and_reduces(harness):
    fan_out = load_flow(f"{EXAMPLES}/fanout.py:fan_out")
    assert fan_out(items=4, weight=3) == 3 * (0 + 1 + 4 + 9)
    runs = harness.task_runs()
    assert len(runs) == 5
    assert runs[-1].upstream_task_run_ids == {r.id for r in runs[:4]}


def test_failing_flow_fails_and_runs_its_hook(harness):
    nightly_report = load_flow(f"{EXAMPLES}/failing.py:nightly_report")
    state = nightly_report(return_state=True)
    assert state.is_failed()
    assert isinstance(state.result(raise_on_failure=False), ValueError)
    assert any("on_failure hook" in m for m in harness.log_messages())


def test_demo_script_exits_zero():
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "every example behaved as expected" in completed.stdout
