"""An event item's document: the event's JSON, zlib-compressed (`document_z`, binary).

Compressed, a state-change event's item fits in one write unit on the table and on the
`by_time` index (its ~900-byte JSON shrinks to ~400 bytes), which halves what storing an
event costs. Items written before hold the JSON as text (`document`): both are read.
An `EVENT#` item may be written by a worker (emit_event), so decompression is bounded:
a document that inflates past MAX_DOCUMENT_BYTES is refused, as a malformed one is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stratoflow.utilities.compressed import (
    MAX_INFLATED_BYTES,
    BadCompressedValue,
    binary_value,
    compress,
)
from stratoflow.utilities.compressed import inflate as _inflate

COMPRESSED = "document_z"
PLAIN = "document"
MAX_DOCUMENT_BYTES = MAX_INFLATED_BYTES

__all__ = ["COMPRESSED", "PLAIN", "BadDocument", "compress", "document_of", "inflate"]


class BadDocument(ValueError):
    """An event item without a readable document."""


def inflate(data: bytes) -> str:
    try:
        return _inflate(data, limit=MAX_DOCUMENT_BYTES)
    except BadCompressedValue as exc:
        raise BadDocument(f"the event document is unreadable: {exc}") from None


def document_of(item: Mapping[str, Any]) -> str:
    """The event JSON of an item, low-level (`{"S": ...}`) or deserialized."""
    if COMPRESSED in item:
        try:
            data = binary_value(item[COMPRESSED])
        except BadCompressedValue as exc:
            raise BadDocument(f"the event document is unreadable: {exc}") from None
        return inflate(data)
    plain = item.get(PLAIN)
    if isinstance(plain, Mapping):
        plain = plain.get("S")
    if not isinstance(plain, str):
        raise BadDocument("the event item has no document")
    return plain
