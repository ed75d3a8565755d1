"""zlib-compressed values in DynamoDB items, read back with bounded inflation.

Compressing what repeats (JSON keys, ISO timestamps) keeps items under the 1 KB of one
write unit. A compressed value may sit in an item a worker wrote, so inflation is
bounded: a value that inflates past `limit` is refused, as a malformed one is.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Mapping
from typing import Any

MAX_INFLATED_BYTES = 400 * 1024
"""DynamoDB's item size limit: no genuine value inflates past it."""


class BadCompressedValue(ValueError):
    """A compressed value that is not binary, does not decompress, or inflates too far."""


def compress(text: str, *, dictionary: bytes | None = None) -> bytes:
    """zlib format; with a preset `dictionary` (zlib's zdict) of what such values usually
    hold, a short value compresses several times better (its header names the
    dictionary: `inflate` must be given the same one)."""
    if dictionary is None:
        return zlib.compress(text.encode(), 6)
    packer = zlib.compressobj(9, zdict=dictionary)
    return packer.compress(text.encode()) + packer.flush()


def inflate(
    data: bytes, *, limit: int = MAX_INFLATED_BYTES, dictionary: bytes | None = None
) -> str:
    inflater = zlib.decompressobj() if dictionary is None else zlib.decompressobj(zdict=dictionary)
    try:
        text = inflater.decompress(data, limit)
    except zlib.error as exc:
        raise BadCompressedValue(f"it does not decompress: {exc}") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise BadCompressedValue(f"it inflates past {limit} bytes, or is truncated")
    try:
        return text.decode()
    except UnicodeDecodeError:
        raise BadCompressedValue("it is not UTF-8 text") from None


def binary_value(value: Any) -> bytes:
    """Bytes from a low-level `{"B": ...}` value, a boto3 Binary, bytes, or the base64
    text a Lambda stream event carries binary values as."""
    if isinstance(value, Mapping):
        value = value.get("B")
    raw = getattr(value, "value", value)
    if isinstance(raw, str):
        try:
            return base64.b64decode(raw, validate=True)
        except binascii.Error:
            raise BadCompressedValue("it is not base64") from None
    if not isinstance(raw, bytes | bytearray):
        raise BadCompressedValue("it is not binary")
    return bytes(raw)
