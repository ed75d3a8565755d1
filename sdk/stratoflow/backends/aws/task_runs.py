"""Write-behind storage of task runs: coalesced and written with BatchWriteItem.

A task run is only ever written by the engine that owns its flow run (the flow run was
claimed with a conditional write), so its state changes need no condition of their
own: they are checked against the transition table in memory, and the latest snapshot
of each changed task run is written at most every `flush_seconds` — a task that goes
Pending → Running → Completed between two flushes costs one item write.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from stratoflow import resources
from stratoflow.backends.aws.items import task_run_to_item
from stratoflow.models import TaskRun
from stratoflow.states import TERMINAL_STATES

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH_LIMIT = 25
"""Items per BatchWriteItem request (the service's limit)."""
UNPROCESSED_ATTEMPTS = 5
PARALLEL_BATCHES = 4
"""BatchWriteItem requests in flight at once when a flush has many task runs."""
logger = logging.getLogger("stratoflow.aws")
_creation_order = itertools.count()
"""Shared by every writer of the process: task runs are numbered as they are created."""


class TaskRunWriter:
    def __init__(self, client: DynamoDBClient, table: str, *, flush_seconds: float = 1.0) -> None:
        self.client = client
        self.table = table
        self.flush_seconds = flush_seconds
        self.live: dict[str, TaskRun] = {}
        """Task runs this process is running, by id (the engine's own objects)."""
        self._dirty: dict[str, TaskRun] = {}
        self._seq: dict[str, int] = {}
        """Creation sequence numbers of the live task runs (see items.CREATION_SEQ)."""
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._executor: ThreadPoolExecutor | None = None

    def track(self, run: TaskRun) -> None:
        with self._lock:
            self.live[run.id] = run
            self._seq[run.id] = next(_creation_order)
        self.mark_dirty(run)

    def mark_dirty(self, run: TaskRun) -> None:
        with self._lock:
            self._dirty[run.id] = run
            if len(self._dirty) >= BATCH_LIMIT:
                self._wake.set()
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(
                target=self._loop, name="stratoflow-task-run-writer", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:
                logger.warning("Writing task runs to DynamoDB failed; will retry", exc_info=True)

    def flush(self) -> None:
        """Write every changed task run now (read-your-writes for queries that follow)."""
        with self._flush_lock:
            with self._lock:
                pending, self._dirty = self._dirty, {}
                seqs = {run_id: self._seq.get(run_id) for run_id in pending}
            if not pending:
                return
            items = {
                run_id: task_run_to_item(run, seq=seqs[run_id]) for run_id, run in pending.items()
            }
            try:
                failed = self._write(items)
            except BaseException:
                # Not written (botocore gave up, or worse): keep them for the next flush.
                # A newer snapshot marked dirty meanwhile is the same object; keep it.
                with self._lock:
                    for run_id, run in pending.items():
                        self._dirty.setdefault(run_id, run)
                raise
            with self._lock:
                for run_id in failed:
                    self._dirty.setdefault(run_id, pending[run_id])
                for run_id, run in pending.items():
                    finished = run.state is not None and run.state.type in TERMINAL_STATES
                    if finished and run_id not in failed and run_id not in self._dirty:
                        self.live.pop(run_id, None)  # durable and final: forget it
                        self._seq.pop(run_id, None)
            if failed:
                raise RuntimeError(f"{len(failed)} task runs could not be written yet")

    def _write(self, items: dict[str, dict[str, Any]]) -> set[str]:
        """BatchWriteItem in chunks, several at a time; returns the ids still unwritten."""
        ids = list(items)
        chunks = [ids[i : i + BATCH_LIMIT] for i in range(0, len(ids), BATCH_LIMIT)]
        if len(chunks) == 1:
            return self._write_chunk(items, chunks[0])
        unwritten: set[str] = set()
        for leftover in self._pool().map(lambda chunk: self._write_chunk(items, chunk), chunks):
            unwritten |= leftover
        return unwritten

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=PARALLEL_BATCHES, thread_name_prefix="stratoflow-batch-write"
            )
        return self._executor

    def _write_chunk(self, items: dict[str, dict[str, Any]], chunk: list[str]) -> set[str]:
        requests: list[Any] = [{"PutRequest": {"Item": items[i]}} for i in chunk]
        by_key = {_item_key(items[i]): i for i in chunk}
        # DynamoDB may accept part of a batch; the rest must be sent again (AWS's
        # documented protocol for BatchWriteItem, separate from botocore's retries).
        for attempt in range(UNPROCESSED_ATTEMPTS):
            response = self.client.batch_write_item(RequestItems={self.table: requests})
            requests = list(response.get("UnprocessedItems", {}).get(self.table, []))
            if not requests:
                return set()
            if attempt + 1 < UNPROCESSED_ATTEMPTS:
                time.sleep(min(0.05 * 2**attempt, 1.0))
        return {by_key[_item_key(request["PutRequest"]["Item"])] for request in requests}

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        try:
            self.flush()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)


def _item_key(item: dict[str, Any]) -> tuple[str, str]:
    return item[resources.PARTITION_KEY]["S"], item[resources.SORT_KEY]["S"]
