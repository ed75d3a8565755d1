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


class UnreadableHistory(ValueError):
    """A stored state history that is not a list of states."""


def history_attributes(states: list[dict[str, Any]]) -> dict[str, Any]:
    """The attributes a write sets (None: removed) for a history of state maps."""
    packed = compress(json.dumps(states, separators=(",", ":"))) if states else None
    return {COMPRESSED: packed, PLAIN: None}


def history_of(item: Mapping[str, Any]) -> list[Any]:
    """The state maps of a deserialized item (or stream image), oldest first."""
    packed = item.get(COMPRESSED)
    if packed is not None:
        try:
            history = json.loads(inflate(binary_value(packed), limit=MAX_HISTORY_BYTES))
        except (BadCompressedValue, ValueError) as exc:
            raise UnreadableHistory(f"the state history is unreadable: {exc}") from None
    else:
        history = item.get(PLAIN) or []
    if not isinstance(history, list):
        raise UnreadableHistory("the state history is not a list")
    return history
