"""Counting AWS API calls, and what they are billed as, from botocore's events.

`CallLog.register(events)` hooks a botocore event system (a session's, before its
clients are created): `provide-client-params` counts every call and records what it
writes, `after-call` sizes what DynamoDB reads. `bench/callcount/sitecustomize.py`
hooks every botocore session of a process the same way, for the benchmarks that count
the calls of worker and flow-run processes.

Billing units (see bench/prices.py):
- DynamoDB writes: a write request unit per started KB of the item, once on the table
  and once on each global secondary index holding the item (the table's indexes project
  ALL attributes, so any write to an indexed item rewrites its index entry; a write that
  changes an index key is a delete and a put there: two). The size of an item an
  UpdateItem or DeleteItem touches is not in the request: `resolve_writes` takes it from
  a scan of the table afterwards (the item's final size: its state history only grows,
  so this is an upper bound), or 1 KB for an item gone by then.
- DynamoDB reads: the items a GetItem, BatchGetItem or Query returned, rounded up to
  4 KB (per item for GetItem and BatchGetItem, per response for Query); eventually
  consistent reads, and every index read, count half; a GetItem that finds nothing, one
  unit (half, eventually consistent).
- SQS: one request per call (payloads here are far below 64 KB).
- S3: PUT-class (PutObject, CopyObject, List*, multipart) and GET-class (the rest).
- CloudWatch Logs: the bytes of PutLogEvents events, plus 26 bytes per event.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

GSI_KEYS = {"by_deployment": "gsi1pk", "by_state": "gsi2pk", "by_time": "gsi3pk"}
"""Each index of the state table and its partition key (stratoflow.resources)."""
GSI_KEY_ATTRIBUTES = {
    "by_deployment": ("gsi1pk", "gsi1sk"),
    "by_state": ("gsi2pk", "gsi2sk"),
    "by_time": ("gsi3pk", "gsi3sk"),
}
WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
S3_PUT_CLASS = {
    "PutObject",
    "CopyObject",
    "ListObjects",
    "ListObjectsV2",
    "ListBuckets",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
}
LOG_EVENT_OVERHEAD = 26


def attribute_size(value: Mapping[str, Any]) -> int:
    """The size DynamoDB bills for one low-level attribute value (its documented rules,
    numbers approximated by their digits)."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(str(raw).encode())
    if kind == "N":
        digits = str(raw).lstrip("-").replace(".", "").lstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(raw) if isinstance(raw, bytes | bytearray) else len(str(raw))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_size(v) + 1 for k, v in raw.items())
    if kind == "L":
        return 3 + sum(attribute_size(v) + 1 for v in raw)
    if kind == "SS":
        return sum(len(str(s).encode()) for s in raw)
    if kind == "NS":
        return sum(attribute_size({"N": n}) for n in raw)
    if kind == "BS":
        return sum(len(b) for b in raw)
    return len(str(raw))


def item_size(item: Mapping[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int) -> int:
    return max(1, math.ceil(size / 4096))


def indexes_of(item: Mapping[str, Any]) -> list[str]:
    return [name for name, key in GSI_KEYS.items() if key in item]


def stream_write_units(record: Mapping[str, Any]) -> tuple[int, int]:
    """(table, indexes) write units billed for the write a stream record reports, from its
    old and new images (NEW_AND_OLD_IMAGES): the table bills the larger image; an index
    bills a put for an item that enters it, a delete for one that leaves it, both when
    the item's key there changes, and one write of the new image when an item that stays
    in it changes (every index projects ALL attributes). Exact where the request-based
    estimate (`CallLog.resolve_writes`) is not: it cannot tell whether an update added an
    item to an index or moved it there."""
    body = record.get("dynamodb") or {}
    old = body.get("OldImage") or None
    new = body.get("NewImage") or None
    old_size = item_size(old) if old else 0
    new_size = item_size(new) if new else 0
    table = write_units(max(old_size, new_size))
    indexes = 0
    for partition, sort in GSI_KEY_ATTRIBUTES.values():
        before = old is not None and partition in old and sort in old
        after = new is not None and partition in new and sort in new
        if before and after:
            assert old is not None and new is not None
            if old[partition] != new[partition] or old[sort] != new[sort]:
                indexes += write_units(old_size) + write_units(new_size)
            elif old != new:
                indexes += write_units(new_size)
        elif before:
            indexes += write_units(old_size)
        elif after:
            indexes += write_units(new_size)
    return table, indexes


def _key_of(item: Mapping[str, Any]) -> tuple[str, str]:
    return str(item["pk"]["S"]), str(item.get("sk", {}).get("S", ""))


class CallLog:
    """AWS calls of one process (or one part of a benchmark)."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.items_written = 0
        self.put_wru = 0
        """Write units of puts, whose items are in the request (table and indexes)."""
        self.pending_writes: list[dict[str, Any]] = []
        """Updates and deletes, sized later against a scan of the table (`resolve_writes`)."""
        self.rru = 0.0
        self.log_events = 0
        self.log_bytes = 0

    def register(self, events: Any) -> None:
        events.register("provide-client-params", self.before)
        events.register("before-parameter-build.dynamodb", remember_params)
        events.register("after-call.dynamodb", self.after)

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    # botocore handlers

    def before(self, model: Any, params: Mapping[str, Any], **_: Any) -> None:
        service = model.service_model.service_name
        name = model.name
        self.calls[f"{service}.{name}"] += 1
        if service == "dynamodb" and name in WRITE_OPERATIONS:
            self._write(name, params)
        elif service == "logs" and name == "PutLogEvents":
            for event in params.get("logEvents", []):
                self.log_events += 1
                self.log_bytes += len(str(event.get("message", "")).encode()) + LOG_EVENT_OVERHEAD

    def _put(self, item: Mapping[str, Any]) -> None:
        self.items_written += 1
        units = write_units(item_size(item))
        self.put_wru += units * (1 + len(indexes_of(item)))

    def _pending(self, kind: str, key: Mapping[str, Any], params: Mapping[str, Any]) -> None:
        self.items_written += 1
        names = set((params.get("ExpressionAttributeNames") or {}).values())
        expression = str(params.get("UpdateExpression") or "")
        changed = [
            index
            for index, attributes in GSI_KEY_ATTRIBUTES.items()
            if any(a in names or a in expression for a in attributes)
        ]
        self.pending_writes.append({"kind": kind, "key": _key_of(key), "index_keys": changed})

    def _write(self, name: str, params: Mapping[str, Any]) -> None:
        if name == "PutItem":
            self._put(params["Item"])
        elif name == "UpdateItem":
            self._pending("update", params["Key"], params)
        elif name == "DeleteItem":
            self._pending("delete", params["Key"], params)
        elif name == "BatchWriteItem":
            for requests in params["RequestItems"].values():
                for request in requests:
                    if "PutRequest" in request:
                        self._put(request["PutRequest"]["Item"])
                    else:
                        self._pending("delete", request["DeleteRequest"]["Key"], {})
        elif name == "TransactWriteItems":
            for entry in params["TransactItems"]:
                if "Put" in entry:
                    self._put(entry["Put"]["Item"])
                    self.put_wru += 1  # transactional writes cost twice; approximated
                elif "Update" in entry:
                    self._pending("update", entry["Update"]["Key"], entry["Update"])
                elif "Delete" in entry:
                    self._pending("delete", entry["Delete"]["Key"], {})
                else:  # ConditionCheck: billed as a write
                    self.put_wru += 1

    def after(self, model: Any, parsed: Mapping[str, Any], **kwargs: Any) -> None:
        name = model.name
        params = (kwargs.get("context") or {}).get("bench_params") or {}
        consistent = bool(params.get("ConsistentRead")) and not params.get("IndexName")
        factor = 1.0 if consistent else 0.5
        if name == "GetItem":
            item = parsed.get("Item")
            self.rru += (read_units(item_size(item)) if item else 1) * factor
        elif name == "BatchGetItem":
            asked = params.get("RequestItems") or {}
            for table, items in (parsed.get("Responses") or {}).items():
                share = 1.0 if (asked.get(table) or {}).get("ConsistentRead") else 0.5
                self.rru += sum(read_units(item_size(i)) for i in items) * share
        elif name in ("Query", "Scan"):
            size = sum(item_size(i) for i in parsed.get("Items") or [])
            self.rru += read_units(size) * factor

    # Summaries

    def resolve_writes(self, sizes: Mapping[tuple[str, str], tuple[int, list[str]]]) -> int:
        """Write units of the updates and deletes: `sizes` maps each item's key to its
        size and indexes (from a scan); an item missing there counts as 1 KB, unindexed."""
        units = 0
        for write in self.pending_writes:
            size, indexes = sizes.get(tuple(write["key"]), (1024, []))  # type: ignore[arg-type]
            per_copy = write_units(size)
            units += per_copy
            for index in indexes:
                units += per_copy * (2 if index in write["index_keys"] else 1)
        return units

    def total_wru(self, sizes: Mapping[tuple[str, str], tuple[int, list[str]]]) -> int:
        return self.put_wru + self.resolve_writes(sizes)

    def merge(self, other: Mapping[str, Any]) -> None:
        """Add a dump of another process's log (`dump()`)."""
        self.calls.update(other["calls"])
        self.items_written += other["items_written"]
        self.put_wru += other["put_wru"]
        self.pending_writes += other["pending_writes"]
        self.rru += other["rru"]
        self.log_events += other["log_events"]
        self.log_bytes += other["log_bytes"]

    def dump(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "items_written": self.items_written,
            "put_wru": self.put_wru,
            "pending_writes": self.pending_writes,
            "rru": self.rru,
            "log_events": self.log_events,
            "log_bytes": self.log_bytes,
        }

    def by_service(self) -> dict[str, int]:
        totals: collections.Counter[str] = collections.Counter()
        for key, count in self.calls.items():
            totals[key.split(".")[0]] += count
        return dict(totals)

    def s3_requests(self) -> tuple[int, int]:
        """(PUT-class, GET-class) S3 requests."""
        put = sum(v for k, v in self.calls.items() if k.startswith("s3.") and k[3:] in S3_PUT_CLASS)
        get = sum(v for k, v in self.calls.items() if k.startswith("s3.")) - put
        return put, get


class Router:
    """botocore handlers that count into whichever CallLog is `target` at the time."""

    def __init__(self, target: CallLog) -> None:
        self.target = target

    def before(self, **kwargs: Any) -> None:
        self.target.before(**kwargs)

    def after(self, **kwargs: Any) -> None:
        self.target.after(**kwargs)

    @property
    def handlers(self) -> list[tuple[str, Any]]:
        return [
            ("provide-client-params", self.before),
            ("before-parameter-build.dynamodb", remember_params),
            ("after-call.dynamodb", self.after),
        ]

    def register(self, events: Any) -> None:
        """On one session's events (before its clients are created)."""
        for name, handler in self.handlers:
            events.register(name, handler)

    def register_everywhere(self) -> None:
        """On every botocore session created from now on, in this process."""
        import botocore.handlers

        botocore.handlers.BUILTIN_HANDLERS += self.handlers


def sizes_for(client: Any, table: str, log: CallLog, known: Mapping[Any, Any]) -> dict[Any, Any]:
    """`known`, plus the size of every item `log` updated or deleted that `known` lacks
    (read now; an item gone by now is left out)."""
    sizes = dict(known)
    for write in log.pending_writes:
        key = tuple(write["key"])
        if key not in sizes:
            item = client.get_item(
                TableName=table, Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}}
            ).get("Item")
            if item is not None:
                sizes[key] = (item_size(item), indexes_of(item))
    return sizes


def remember_params(params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
    """`before-parameter-build.dynamodb`: keep the request's parameters for `after`."""
    context["bench_params"] = dict(params)


def table_sizes(client: Any, table: str) -> dict[tuple[str, str], tuple[int, list[str]]]:
    """Every item's key → (size, indexes holding it), by a scan (call this on a client
    whose calls are not counted)."""
    sizes: dict[tuple[str, str], tuple[int, list[str]]] = {}
    for page in client.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            sizes[_key_of(item)] = (item_size(item), indexes_of(item))
    return sizes


def summarize(
    log: CallLog, sizes: Mapping[tuple[str, str], tuple[int, list[str]]]
) -> dict[str, Any]:
    s3_put, s3_get = log.s3_requests()
    by_service = log.by_service()
    return {
        "api_calls": sum(log.calls.values()),
        "dynamodb_calls": by_service.get("dynamodb", 0),
        "dynamodb_items_written": log.items_written,
        "dynamodb_wru": log.total_wru(sizes),
        "dynamodb_rru": round(log.rru, 2),
        "sqs_requests": by_service.get("sqs", 0),
        "s3_put_requests": s3_put,
        "s3_get_requests": s3_get,
        "logs_calls": by_service.get("logs", 0),
        "log_events": log.log_events,
        "log_bytes": log.log_bytes,
        "calls_by_operation": dict(sorted(log.calls.items())),
    }


def per(
    figures: Mapping[str, Any], n: float, keys: Iterable[str] | None = None
) -> dict[str, float]:
    """Numeric figures divided by n (rounded), e.g. per flow run."""
    chosen = keys if keys is not None else [k for k, v in figures.items() if _numeric(v)]
    return {k: round(float(figures[k]) / n, 4) for k in chosen}


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)
