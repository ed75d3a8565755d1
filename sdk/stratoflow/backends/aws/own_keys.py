"""Items read through an index are used only when they are the item their content names.

Worker roles may write any item whose partition key starts with `FLOWRUN#`, `EVENT#`, ...
(`dynamodb:LeadingKeys` bounds only the table's partition key), and such an item may
carry any index attribute: `gsi3pk = DEPLOYMENTS` puts it in the deployments listing. So
every reader of an index re-derives the primary key from what it is about to use (the
deployment's name, the automation's id, the run's id) and drops the item when the key
is not the item's own (docs/security.md, "Control-plane definitions are read only from
their own items"). An index item is a projection of the base-table item with the same
`pk`/`sk`, so the check costs no read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from stratoflow import resources

log = logging.getLogger(__name__)

SHOWN_KEYS = 3
"""Foreign keys named in the warning; the rest are only counted (an attacker writing
many items must not flood the logs)."""
SHOWN_KEY_CHARACTERS = 120
"""A key is cut to this many characters in the warning (keys may be 2 KB)."""

Item = TypeVar("Item", bound=Mapping[str, Any])
KeyOf = Callable[[Mapping[str, Any]], Mapping[str, str]]
"""The primary key an item should have, derived from its content (low-level item)."""


def string_attribute(item: Mapping[str, Any], name: str) -> str:
    """A string attribute of a low-level DynamoDB item (KeyError when it is not one)."""
    value = item[name]
    if not isinstance(value, Mapping) or not isinstance(value.get("S"), str):
        raise KeyError(name)
    return str(value["S"])


def item_key(item: Mapping[str, Any]) -> tuple[str, str]:
    """The item's own `pk`, `sk` (empty strings when missing or not strings)."""
    found = []
    for name in (resources.PARTITION_KEY, resources.SORT_KEY):
        try:
            found.append(string_attribute(item, name))
        except KeyError:
            found.append("")
    return found[0], found[1]


class OwnItems:
    """Keeps the items whose key is the one `key_of` derives from their content.

    One instance per listing: call it on each page, then `close()` it (or use it as a
    context manager), which logs one warning naming the count of foreign items and the
    first few keys.
    """

    def __init__(self, what: str, key_of: KeyOf) -> None:
        self.what = what
        self.key_of = key_of
        self.foreign = 0
        self.shown: list[str] = []

    def is_own(self, item: Mapping[str, Any]) -> bool:
        expected: Mapping[str, str] | None
        try:
            expected = self.key_of(item)
        # The content is untrusted: a missing attribute, a wrong type or an invalid
        # document means it cannot be a definition of ours.
        except (KeyError, TypeError, ValueError):
            expected = None
        own = item_key(item)
        if expected is not None and own == (
            expected[resources.PARTITION_KEY],
            expected[resources.SORT_KEY],
        ):
            return True
        self.foreign += 1
        if len(self.shown) < SHOWN_KEYS:
            self.shown.append("/".join(part[:SHOWN_KEY_CHARACTERS] for part in own))
        return False

    def __call__(self, items: Iterable[Item]) -> list[Item]:
        return [item for item in items if self.is_own(item)]

    def close(self) -> None:
        if self.foreign:
            hidden = self.foreign - len(self.shown)
            log.warning(
                "Ignored %d item(s) listed as %s whose key is not the one their content "
                "names (index attributes written by a worker role?): %s%s",
                self.foreign,
                self.what,
                ", ".join(repr(key) for key in self.shown),
                f" and {hidden} more" if hidden else "",
            )
            self.foreign = 0
            self.shown = []

    def __enter__(self) -> OwnItems:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
