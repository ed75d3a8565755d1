"""An event item's document: the event's JSON, zlib-compressed (`document_z`, binary).

Compressed, a state-change event's item fits in one write unit on the table and on the
`by_time` index (its ~900-byte JSON shrinks to ~400 bytes), which halves what storing an
event costs. Items written before hold the JSON as text (`document`): both are read.
An `EVENT#` item may be written by a worker (emit_event), so decompression is bounded:
a document that inflates past MAX_DOCUMENT_BYTES is refused, as a malformed one is.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Mapping
from typing import Any

COMPRESSED = "document_z"
PLAIN = "document"
MAX_DOCUMENT_BYTES = 400 * 1024
"""DynamoDB's item size limit: no genuine document inflates past it."""


class BadDocument(ValueError):
    """An event item without a readable document."""


def compress(document: str) -> bytes:
    return zlib.compress(document.encode(), 6)


def inflate(data: bytes) -> str:
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(data, MAX_DOCUMENT_BYTES)
    except zlib.error as exc:
        raise BadDocument(f"the event document does not decompress: {exc}") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise BadDocument(
            f"the event document inflates past {MAX_DOCUMENT_BYTES} bytes, or is truncated"
        )
    return text.decode()


def _binary(value: Any) -> bytes:
    """Bytes from a low-level `{"B": ...}` value, a boto3 Binary, bytes, or the base64
    text a Lambda stream event carries binary values as."""
    if isinstance(value, Mapping):
        value = value.get("B")
    raw = getattr(value, "value", value)
    if isinstance(raw, str):
        try:
            return base64.b64decode(raw, validate=True)
        except binascii.Error:
            raise BadDocument("the event document is not base64") from None
    if not isinstance(raw, bytes | bytearray):
        raise BadDocument("the event document is not binary")
    return bytes(raw)


def document_of(item: Mapping[str, Any]) -> str:
    """The event JSON of an item, low-level (`{"S": ...}`) or deserialized."""
    if COMPRESSED in item:
        return inflate(_binary(item[COMPRESSED]))
    plain = item.get(PLAIN)
    if isinstance(plain, Mapping):
        plain = plain.get("S")
    if not isinstance(plain, str):
        raise BadDocument("the event item has no document")
    return plain
