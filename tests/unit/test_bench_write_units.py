"""The benchmark's write-unit accounting from stream records (bench/calls.py): the cost
targets of docs/performance.md are computed with it."""

from __future__ import annotations

from typing import Any

from bench.calls import stream_write_units


def _record(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"Keys": {"pk": {"S": "FLOWRUN#r"}, "sk": {"S": "META"}}}
    if old is not None:
        body["OldImage"] = old
    if new is not None:
        body["NewImage"] = new
    return {"dynamodb": body}


def _run(state: str, **extra: str) -> dict[str, Any]:
    item = {
        "pk": {"S": "FLOWRUN#r"},
        "sk": {"S": "META"},
        "state_type": {"S": state},
        "gsi2pk": {"S": f"STATE#{state}"},
        "gsi2sk": {"S": "2026-01-01T00:00:00+00:00"},
    }
    return item | {name: {"S": value} for name, value in extra.items()}


LISTED = {"gsi3pk": "FLOWRUNS#2026-01-01", "gsi3sk": "t", "gsi1pk": "DEPLOYMENT#d", "gsi1sk": "t"}


def test_an_insert_bills_the_table_and_each_index_holding_the_item() -> None:
    assert stream_write_units(_record(None, _run("SCHEDULED"))) == (1, 1)
    assert stream_write_units(_record(None, _run("SCHEDULED", **LISTED))) == (1, 3)


def test_a_key_change_is_a_delete_and_a_put_and_an_entry_is_a_put() -> None:
    # Running -> Completed: by_state moves (2), by_time and by_deployment gain it (1 each).
    assert stream_write_units(_record(_run("RUNNING"), _run("COMPLETED", **LISTED))) == (1, 4)


def test_an_item_that_stays_in_an_index_costs_one_write_there_when_it_changes() -> None:
    old = _run("RUNNING", **LISTED)
    new = _run("RUNNING", **LISTED, enqueued_at="now")
    assert stream_write_units(_record(old, new)) == (1, 3)
    assert stream_write_units(_record(old, old)) == (1, 0)


def test_a_removal_bills_a_delete_everywhere_and_size_counts_per_started_kilobyte() -> None:
    big = _run("COMPLETED", **LISTED, parameters="x" * 1500)
    assert stream_write_units(_record(big, None)) == (2, 6)
