"""Transactions, as in Prefect 3: a task's side effect is undone by its rollback hook
when a later task in the same transaction fails, and a keyed transaction runs its work
once.

    python examples/transaction_flow.py

1. `publish` writes a file, then `quality_check` finds too few lines: the transaction
   rolls back, `publish`'s on_rollback hook deletes the file, and the flow fails.
2. With enough lines, the transaction commits: `publish`'s on_commit hook runs.
3. `export_once` opens `transaction(key=...)`: its second run finds the key committed
   and skips the work.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from stratoflow import flow, get_run_logger, task
from stratoflow.transactions import Transaction, get_transaction, transaction


@task
def publish(path: str, lines: list[str]) -> int:
    Path(path).write_text("\n".join(lines))
    return len(lines)


@publish.on_rollback
def unpublish(txn: Transaction) -> None:
    # The flow set "path" on the enclosing transaction; the task's own one reads it.
    Path(txn.get("path")).unlink(missing_ok=True)


@publish.on_commit
def announce(txn: Transaction) -> None:
    print(f"committed: {txn.get('path')} is published")


@task
def quality_check(path: str, minimum: int) -> None:
    found = len(Path(path).read_text().splitlines())
    if found < minimum:
        raise ValueError(f"{path} has {found} line(s), fewer than {minimum}")


@flow
def release(path: str, lines: list[str], minimum: int = 2) -> int:
    with transaction() as txn:
        txn.set("path", path)
        count = publish(path, lines)
        quality_check(path, minimum)
    return count


@task
def export(rows: int) -> int:
    get_run_logger().info("Exporting %d rows", rows)
    return rows


@flow
def export_once(key: str, rows: int) -> str:
    with transaction(key=key) as txn:
        if txn.is_committed():
            return "skipped: already exported"
        export(rows)
        current = get_transaction()
        assert current is txn
    return "exported"


def main() -> None:
    target = Path(tempfile.mkdtemp(prefix="stratoflow-txn-")) / "report.txt"

    state = release(str(target), ["only one line"], return_state=True)
    assert state.is_failed() and not target.exists()
    print(f"1. quality check failed, rolled back: {target.name} exists? {target.exists()}")

    assert release(str(target), ["line one", "line two"]) == 2
    print(f"2. committed: {target.name} exists? {target.exists()}")

    key = f"example-export-{uuid.uuid4().hex[:8]}"
    print(f"3. first run: {export_once(key, rows=10)}; second run: {export_once(key, rows=10)}")


if __name__ == "__main__":
    main()
