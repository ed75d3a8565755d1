"""How far the scheduler has made each schedule's runs, so a steady tick reads instead of
writing.

Each tick looks at every slot in its window (`[now - 2 min, now + 15 min)`); without a
mark it would try to create every one (a refused conditional put and a read each, about
17 slots per minute-schedule per tick). A *mark* records, per deployment and schedule,
the latest slot whose run exists (`up_to`) and the fingerprint of the deployment
definition it was made under. A tick skips the slots at or before a valid mark and makes
only the new ones; marks are read a page of deployments at a time (one BatchGetItem per
100) and written only when a mark moves.

A mark counts only while the deployment's definition is the one it was made under (its
fingerprint is a hash of the whole stored definition, `updated` included): a redeploy, a
pause or resume, a schedule turned off or on, each of which may remove future runs, makes
the next tick look at every slot again. The marks and the tick's cursor are written by
the scheduler alone: their partitions are outside every worker role's (docs/security.md).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from stratoflow import resources
from stratoflow.backends.aws.items import from_item, to_item
from stratoflow.deployments.models import Deployment

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH_GET_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Mark:
    up_to: datetime
    fingerprint: str


def fingerprint(deployment: Deployment) -> str:
    """Changes whenever the stored definition does (any field, `updated` included)."""
    return hashlib.blake2b(deployment.model_dump_json().encode(), digest_size=12).hexdigest()


def _marks_of(raw: Any) -> dict[str, Mark]:
    marks: dict[str, Mark] = {}
    if not isinstance(raw, Mapping):
        return marks
    for key, value in raw.items():
        try:
            marks[str(key)] = Mark(datetime.fromisoformat(value["up_to"]), str(value["fp"]))
        except (KeyError, TypeError, ValueError):
            continue  # an unreadable mark is no mark: that schedule's slots are all looked at
    return marks


class ScheduleMarks:
    """The marks and the tick's cursor, in the state table."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self.client = client
        self.table = table

    def read(self, deployment_names: Iterable[str]) -> dict[str, dict[str, Mark]]:
        """deployment → schedule key → mark, for those that have marks."""
        names = list(dict.fromkeys(deployment_names))
        found: dict[str, dict[str, Mark]] = {}
        for start in range(0, len(names), BATCH_GET_LIMIT):
            keys = [
                to_item(resources.schedule_marks_key(n))
                for n in names[start : start + BATCH_GET_LIMIT]
            ]
            request: dict[str, Any] = {self.table: {"Keys": keys, "ConsistentRead": True}}
            for attempt in range(8):
                response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table, []):
                    raw = from_item(item)
                    name = str(raw.get(resources.PARTITION_KEY, "")).removeprefix("SCHEDULEMARKS#")
                    found[name] = _marks_of(raw.get("marks"))
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            # Keys still unprocessed have no mark this tick: their slots are all looked at.
        return found

    def write(self, deployment_name: str, marks: Mapping[str, Mark]) -> None:
        self.client.put_item(
            TableName=self.table,
            Item=to_item(
                {
                    **resources.schedule_marks_key(deployment_name),
                    "entity": "schedule-marks",
                    "marks": {
                        key: {"up_to": mark.up_to.isoformat(), "fp": mark.fingerprint}
                        for key, mark in marks.items()
                    },
                }
            ),
        )

    def forget(self, deployment_name: str) -> None:
        self.client.delete_item(
            TableName=self.table, Key=to_item(resources.schedule_marks_key(deployment_name))
        )

    def cursor(self) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self.table, Key=to_item(resources.SCHEDULER_CURSOR_KEY), ConsistentRead=True
        ).get("Item")
        if item is None or "start" not in item:
            return None
        try:
            start = json.loads(item["start"]["S"])
        except (KeyError, TypeError, ValueError):
            return None
        return start if isinstance(start, dict) else None

    def set_cursor(self, start: dict[str, Any] | None) -> None:
        key = to_item(resources.SCHEDULER_CURSOR_KEY)
        if start is None:
            self.client.delete_item(TableName=self.table, Key=key)
            return
        self.client.put_item(
            TableName=self.table,
            Item={**key, "entity": {"S": "scheduler-cursor"}, "start": {"S": json.dumps(start)}},
        )


def is_bad_start(exc: ClientError) -> bool:
    """DynamoDB refused a cursor as an ExclusiveStartKey (the index changed under it)."""
    return exc.response.get("Error", {}).get("Code") == "ValidationException"
