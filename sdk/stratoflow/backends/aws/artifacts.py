"""Artifacts in the state table, large bodies in the results bucket.

One item per artifact version, `ARTIFACT#<id>` / `META`: its key, type, description,
run ids, creation and update times, and its body (the JSON of its data) when the body
is at most `records.INLINE_DATA_MAX_BYTES`; a larger body is written first to
`s3://<results bucket>/results/artifacts/<id>.json` and the item records its size and
sha256. The item is in three index partitions, each sorted by `<created>#<id>`:

| index | partition | lists |
| --- | --- | --- |
| by_deployment | `ARTIFACTKEY#<key>` | the versions of a key (newest is `Artifact.get`) |
| by_state | `ARTIFACTRUN#<flow run id>` | the artifacts of a run and its task runs |
| by_time | `ARTIFACTS#<UTC day>` | every artifact by day (`strato artifact ls`) |

Worker roles may write `ARTIFACT#` items and `results/` objects (flows create
artifacts), so what is read is untrusted: a listing keeps only items whose own key is
the one their `id` gives (`own_keys.OwnItems`) and that belong to the partition asked
for (their `key` or `flow_run_id`); a broken item is skipped with a warning; a body is
read only from the key derived from the item's own id, at most `DATA_MAX_BYTES` of it,
and only when its sha256 is the one recorded. Bodies are JSON, never unpickled.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from uuid import UUID

from botocore.exceptions import ClientError

from stratoflow import resources
from stratoflow.backends.aws.items import to_attribute, to_item
from stratoflow.backends.aws.own_keys import OwnItems, string_attribute
from stratoflow.clock import Clock, SystemClock
from stratoflow.exceptions import ObjectNotFound
from stratoflow.records import (
    DATA_MAX_BYTES,
    INLINE_DATA_MAX_BYTES,
    ArtifactBodyUnavailable,
    ArtifactRecord,
    InvalidArtifactError,
    artifact_body,
    compact_json,
    sort_time,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)
ENTITY = "artifact"
LOOKBACK_DAYS = 30
"""How far back `recent` (and so `strato artifact ls` without --key) looks."""
_MISSING = ("NoSuchKey", "404", "NotFound")
_UNREADABLE = ("InvalidRange", "416")
_BROKEN = (KeyError, TypeError, ValueError)
"""What parsing an item a worker wrote wrong raises (pydantic's ValidationError too)."""


def _canonical_id(text: str) -> str:
    return str(UUID(text))


def _own_key(item: Mapping[str, Any]) -> Mapping[str, str]:
    # A non-canonical id (or none) cannot be the id of the item's own key.
    return resources.artifact_key(_canonical_id(string_attribute(item, "id")))


def _optional(item: Mapping[str, Any], name: str) -> str | None:
    return string_attribute(item, name) if name in item else None


def _number(item: Mapping[str, Any], name: str) -> int:
    raw = item[name]
    if not isinstance(raw, Mapping) or not isinstance(raw.get("N"), str):
        raise KeyError(name)
    return int(raw["N"])


def artifact_from_item(item: Mapping[str, Any]) -> ArtifactRecord:
    """The record of an item (its body when inline); raises one of `_BROKEN`."""
    inline = _optional(item, "data")
    metadata = _optional(item, "metadata")
    fields: dict[str, Any] = {
        "id": UUID(string_attribute(item, "id")),
        "key": _optional(item, "key"),
        "type": _optional(item, "type"),
        "description": _optional(item, "description"),
        "metadata_": json.loads(metadata) if metadata is not None else None,
        "flow_run_id": _optional(item, "flow_run_id"),
        "task_run_id": _optional(item, "task_run_id"),
        "created": datetime.fromisoformat(string_attribute(item, "created")),
        "updated": datetime.fromisoformat(string_attribute(item, "updated")),
    }
    if inline is not None:
        return ArtifactRecord(**fields, data=json.loads(inline), body_bytes=len(inline.encode()))
    return ArtifactRecord(
        **fields,
        body_bytes=_number(item, "body_bytes"),
        body_loaded=False,
        body_sha256=string_attribute(item, "body_sha256"),
    )


class DynamoArtifactStore:
    def __init__(
        self,
        dynamodb: DynamoDBClient,
        s3: S3Client,
        table: str,
        bucket: str,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.dynamodb = dynamodb
        self.s3 = s3
        self.table = table
        self.bucket = bucket
        self.clock = clock or SystemClock()

    # Writing

    def create(self, record: ArtifactRecord) -> ArtifactRecord:
        artifact_id = str(record.id)
        body = artifact_body(record.data)
        encoded = body.encode()
        order = record.sort_key()
        values: dict[str, Any] = {
            **resources.artifact_key(artifact_id),
            "entity": ENTITY,
            "id": artifact_id,
            "key": record.key,
            "type": record.type,
            "description": record.description,
            "metadata": compact_json(record.metadata_) if record.metadata_ else None,
            "flow_run_id": record.flow_run_id,
            "task_run_id": record.task_run_id,
            "created": sort_time(record.created),
            "updated": sort_time(record.updated),
            resources.ARTIFACT_BY_DAY.partition_key: resources.artifacts_day_partition(
                record.created.astimezone(UTC).date()
            ),
            resources.ARTIFACT_BY_DAY.sort_key: order,
        }
        if record.key is not None:
            values[resources.ARTIFACT_BY_KEY.partition_key] = resources.artifact_key_partition(
                record.key
            )
            values[resources.ARTIFACT_BY_KEY.sort_key] = order
        if record.flow_run_id is not None:
            index = resources.ARTIFACT_BY_FLOW_RUN
            values[index.partition_key] = resources.artifact_flow_run_partition(record.flow_run_id)
            values[index.sort_key] = order
        stored = record.model_copy(update={"body_bytes": len(encoded)})
        if len(encoded) <= INLINE_DATA_MAX_BYTES:
            values["data"] = body
        else:
            digest = hashlib.sha256(encoded).hexdigest()
            # The body first: an item is never visible without its body.
            self.s3.put_object(
                Bucket=self.bucket,
                Key=resources.artifact_body_key(artifact_id),
                Body=encoded,
                ContentType="application/json",
            )
            values["body_bytes"] = len(encoded)
            values["body_sha256"] = digest
            stored = stored.model_copy(update={"body_sha256": digest})
        self.dynamodb.put_item(
            TableName=self.table,
            Item=to_item(values),
            ConditionExpression="attribute_not_exists(pk)",
        )
        return stored

    def update_progress(
        self, artifact_id: str, progress: float, *, description: str | None, now: datetime
    ) -> ArtifactRecord:
        names = {"#type": "type", "#data": "data", "#updated": "updated"}
        values: dict[str, Any] = {
            ":progress": to_attribute("progress"),
            ":data": to_attribute(compact_json(progress)),
            ":now": to_attribute(sort_time(now)),
        }
        expression = "SET #data = :data, #updated = :now"
        if description is not None:
            names["#description"] = "description"
            values[":description"] = to_attribute(description)
            expression += ", #description = :description"
        try:
            response = self.dynamodb.update_item(
                TableName=self.table,
                Key=self._key(artifact_id),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(pk) AND #type = :progress",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            existing = self.read(artifact_id)  # raises ObjectNotFound
            raise InvalidArtifactError(
                f"Artifact {artifact_id} is a {existing.type!r} artifact: only progress "
                "artifacts (create_progress_artifact) can be updated. Create a new version "
                "with the same key instead."
            ) from None
        return self._parse(response["Attributes"], artifact_id)

    # Reading

    def _key(self, artifact_id: str) -> dict[str, Any]:
        try:
            canonical = _canonical_id(str(artifact_id))
        except ValueError:
            raise ObjectNotFound(
                f"No artifact with id {str(artifact_id)!r}: artifact ids are UUIDs."
            ) from None
        return {k: to_attribute(v) for k, v in resources.artifact_key(canonical).items()}

    @staticmethod
    def _parse(item: Mapping[str, Any], artifact_id: str) -> ArtifactRecord:
        try:
            return artifact_from_item(item)
        except _BROKEN as exc:
            raise ArtifactBodyUnavailable(
                f"The stored artifact {artifact_id} is not a valid artifact "
                f"({type(exc).__name__}); create it again."
            ) from None

    def read(self, artifact_id: str) -> ArtifactRecord:
        item = self.dynamodb.get_item(
            TableName=self.table, Key=self._key(artifact_id), ConsistentRead=True
        ).get("Item")
        if item is None:
            raise ObjectNotFound(f"No artifact with id {str(artifact_id)!r}.")
        return self.load_body(self._parse(item, str(artifact_id)))

    def load_body(self, record: ArtifactRecord) -> ArtifactRecord:
        if record.body_loaded:
            return record
        location = f"s3://{self.bucket}/{resources.artifact_body_key(str(record.id))}"
        try:
            response = self.s3.get_object(
                Bucket=self.bucket,
                Key=resources.artifact_body_key(str(record.id)),
                Range=f"bytes=0-{DATA_MAX_BYTES}",  # one byte more than any genuine body
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _MISSING:
                raise ArtifactBodyUnavailable(
                    f"The body of artifact {record.id} is no longer at {location}: bodies "
                    "over 64 KiB live in the results bucket, whose lifecycle deletes them "
                    "(results_expiration_days). Create the artifact again to show it."
                ) from None
            if exc.response["Error"]["Code"] not in _UNREADABLE:
                raise
            raw = b""  # an empty object: no genuine body is
        else:
            raw = response["Body"].read()
        try:
            if hashlib.sha256(raw).hexdigest() != record.body_sha256:
                raise ValueError("sha256 differs")
            data = json.loads(raw)
        except ValueError:
            raise ArtifactBodyUnavailable(
                f"The body at {location} is not the one artifact {record.id} recorded "
                "(changed after it was created); it is not shown. Create the artifact again."
            ) from None
        return record.model_copy(update={"data": data, "body_loaded": True})

    def _query(
        self,
        index: resources.IndexSpec,
        partition: str,
        belongs: Callable[[ArtifactRecord], bool],
    ) -> Iterator[ArtifactRecord]:
        """Own, valid items of one index partition that `belongs` accepts, newest first."""
        skipped = 0
        paginator = self.dynamodb.get_paginator("query")
        with OwnItems("artifact", _own_key) as own:
            try:
                for page in paginator.paginate(
                    TableName=self.table,
                    IndexName=index.name,
                    KeyConditionExpression="#p = :p",
                    ExpressionAttributeNames={"#p": index.partition_key},
                    ExpressionAttributeValues={":p": to_attribute(partition)},
                    ScanIndexForward=False,
                ):
                    for item in own(page["Items"]):
                        try:
                            record = artifact_from_item(item)
                        except _BROKEN:
                            skipped += 1
                            continue
                        if belongs(record):
                            yield record
                        else:
                            skipped += 1
            finally:
                if skipped:
                    log.warning(
                        "Skipped %d artifact item(s) in %s that are not valid artifacts of it.",
                        skipped,
                        partition[:120],
                    )

    def latest(self, key: str | None = None) -> ArtifactRecord | None:
        found = self.versions(key, limit=1) if key is not None else self.recent(limit=1)
        return self.load_body(found[0]) if found else None

    def versions(self, key: str, *, limit: int | None = None) -> list[ArtifactRecord]:
        records = self._query(
            resources.ARTIFACT_BY_KEY,
            resources.artifact_key_partition(key),
            lambda record: record.key == key,
        )
        return _take(records, limit)

    def of_flow_run(self, flow_run_id: str, *, limit: int | None = None) -> list[ArtifactRecord]:
        records = self._query(
            resources.ARTIFACT_BY_FLOW_RUN,
            resources.artifact_flow_run_partition(flow_run_id),
            lambda record: record.flow_run_id == flow_run_id,
        )
        return _take(records, limit)

    def recent(self, *, limit: int | None = None) -> list[ArtifactRecord]:
        today = self.clock.now().astimezone(UTC).date()

        def every_day() -> Iterator[ArtifactRecord]:
            for days_back in range(LOOKBACK_DAYS + 1):
                day = today - timedelta(days=days_back)
                yield from self._query(
                    resources.ARTIFACT_BY_DAY,
                    resources.artifacts_day_partition(day),
                    partial(_created_on, day=day),
                )

        return _take(every_day(), limit)


def _created_on(record: ArtifactRecord, *, day: date) -> bool:
    return record.created.astimezone(UTC).date() == day


def _take(records: Iterator[ArtifactRecord], limit: int | None) -> list[ArtifactRecord]:
    taken: list[ArtifactRecord] = []
    if limit is not None and limit <= 0:
        return taken
    for record in records:
        taken.append(record)
        if limit is not None and len(taken) >= limit:
            break
    return taken
