"""How a flow-run item stores its state history: compact JSON, zlib-compressed, in the
binary attribute `state_history_z`.

A history of a few states is ~440 bytes as DynamoDB maps and ~170 compressed, which
keeps a flow run's item under the 1 KB of one write unit (on the table and on each index
holding it). Items written before hold a list of maps in `state_history`: both are read,
and the next write replaces the list. The stream handler reads histories from items a
worker may have written, so inflation is bounded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from stratoflow.utilities.compressed import BadCompressedValue, binary_value, compress, inflate

PLAIN = "state_history"
COMPRESSED = "state_history_z"
MAX_HISTORY_BYTES = 64 * 1024
"""Far above any genuine history (STATE_HISTORY_LIMIT states, messages cut to 200)."""
DICTIONARY = (
    b'"details":"{\\"scheduled_time\\":\\"+00:00\\"}","message":"'
    b'{"type":"CANCELLING","name":"Cancelling","timestamp":"+00:00","own":3},'
    b'{"type":"PAUSED","name":"Suspended","timestamp":"+00:00","own":3},'
    b'{"type":"CRASHED","name":"Crashed","timestamp":"+00:00","own":3},'
    b'{"type":"FAILED","name":"Failed","timestamp":"+00:00","own":3},'
    b'{"type":"SCHEDULED","name":"AwaitingRetry","timestamp":"+00:00","own":3},'
    b'{"type":"SCHEDULED","name":"Late","timestamp":"+00:00","own":3},'
    b'{"type":"SCHEDULED","name":"Scheduled","timestamp":"+00:00","own":3},'
    b'{"type":"PENDING","name":"Pending","timestamp":"+00:00","own":3},'
    b'{"type":"RUNNING","name":"Running","timestamp":"+00:00","own":3}]'
)
"""zlib's preset dictionary for histories: the keys, state names and fragments they
repeat (a three-state history: 173 -> ~75 bytes). Fixed for as long as items written
with it exist: a new one needs a new attribute name (zlib's header names the
dictionary by checksum, so a mismatch is an error, not garbage)."""


class UnreadableHistory(ValueError):
    """A stored state history that is not a list of states."""


def history_attributes(states: list[dict[str, Any]]) -> dict[str, Any]:
    """The attributes a write sets (None: removed) for a history of state maps."""
    text = json.dumps(states, separators=(",", ":"))
    packed = compress(text, dictionary=DICTIONARY) if states else None
    return {COMPRESSED: packed, PLAIN: None}


def history_of(item: Mapping[str, Any]) -> list[Any]:
    """The state maps of a deserialized item (or stream image), oldest first."""
    packed = item.get(COMPRESSED)
    if packed is not None:
        try:
            text = inflate(binary_value(packed), limit=MAX_HISTORY_BYTES, dictionary=DICTIONARY)
            history = json.loads(text)
        except (BadCompressedValue, ValueError) as exc:
            raise UnreadableHistory(f"the state history is unreadable: {exc}") from None
    else:
        history = item.get(PLAIN) or []
    if not isinstance(history, list):
        raise UnreadableHistory("the state history is not a list")
    return history
