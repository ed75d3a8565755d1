"""examples/transaction_flow.py does what its docstring says."""

from __future__ import annotations

from pathlib import Path

from stratoflow.entrypoints import load_flow
from stratoflow.testing import stratoflow_test_harness

EXAMPLE = Path(__file__).parents[2] / "examples" / "transaction_flow.py"


def test_rollback_deletes_the_file_commit_keeps_it_and_a_key_runs_once(tmp_path: Path) -> None:
    release = load_flow(f"{EXAMPLE}:release")
    export_once = load_flow(f"{EXAMPLE}:export_once")
    target = tmp_path / "report.txt"
    with stratoflow_test_harness():
        assert release(str(target), ["one line"], return_state=True).is_failed()
        assert not target.exists()
        assert release(str(target), ["one", "two"]) == 2
        assert target.read_text() == "one\ntwo"
        assert export_once("k", rows=1) == "exported"
        assert export_once("k", rows=1) == "skipped: already exported"
