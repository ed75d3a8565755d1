"""The messages of a poller's ended runs, deleted together: one DeleteMessageBatch (up to
ten messages, one SQS request) instead of a DeleteMessage per run.

A message waits here at most `within` seconds (one second by default), less when ten are
waiting for one queue or when no run is left running (nothing to wait for). Meanwhile it
stays invisible: its visibility was extended while its run ran, and has most of a
visibility timeout left, far more than the wait. If the poller dies before deleting it,
SQS delivers it again after its visibility timeout, and the worker that receives it
drops it as it drops any duplicate (its run is final, or a later attempt's message claims
the run first: docs/workers.md).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from stratoflow.clock import Clock

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger("stratoflow.workers")

BATCH = 10
"""SQS deletes at most ten messages per DeleteMessageBatch."""


class Deletions:
    def __init__(self, sqs: SQSClient, clock: Clock, *, within: float = 1.0) -> None:
        self.sqs = sqs
        self.clock = clock
        self.within = timedelta(seconds=within)
        self._waiting: defaultdict[str, list[tuple[str, datetime]]] = defaultdict(list)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return sum(len(receipts) for receipts in self._waiting.values())

    def add(self, url: str, receipt: str) -> None:
        """Delete this message soon (at once when `within` is 0)."""
        with self._lock:
            self._waiting[url].append((receipt, self.clock.now()))
        if self.within <= timedelta(0):
            self.flush(everything=True)

    def flush(self, *, everything: bool = False) -> None:
        """Delete the messages of each queue whose oldest waited `within` or that has ten
        waiting (`everything`: all of them now)."""
        due = self.clock.now() - self.within
        with self._lock:
            batches: list[tuple[str, list[str]]] = []
            for url, waiting in list(self._waiting.items()):
                if everything or len(waiting) >= BATCH or waiting[0][1] <= due:
                    receipts = [receipt for receipt, _ in waiting]
                    batches += [
                        (url, receipts[i : i + BATCH]) for i in range(0, len(receipts), BATCH)
                    ]
                    del self._waiting[url]
        for url, receipts in batches:
            self._delete(url, receipts)

    def _delete(self, url: str, receipts: list[str]) -> None:
        try:
            response = self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(receipts)],
            )
        except (BotoCoreError, ClientError) as exc:
            logger.warning(
                "Could not delete %d message(s) of ended runs (%s); SQS delivers them again "
                "after their visibility timeout and they are dropped then",
                len(receipts),
                exc,
            )
            return
        for failed in response.get("Failed", []):
            # A duplicate of the message was received and deleted elsewhere meanwhile.
            logger.debug("Could not delete a message: %s", failed.get("Message"))
