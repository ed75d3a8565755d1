"""Label patterns: a whole value, with `*` standing for any run of characters (possibly
none); every other character is literal. A label missing from a resource only matches the
pattern `*`. Used by triggers and by `wait_for_event`."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

Patterns = str | Sequence[str]


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def matches(pattern: str, value: str | None) -> bool:
    """`pattern` (with `*` wildcards) matches all of `value`."""
    if value is None:
        return pattern == "*"
    if "*" not in pattern:
        return pattern == value
    return _compiled(pattern).fullmatch(value) is not None


def matches_any(patterns: Patterns, value: str | None) -> bool:
    if isinstance(patterns, str):
        return matches(patterns, value)
    return any(matches(p, value) for p in patterns)


def labels_match(spec: Mapping[str, Patterns], labels: Mapping[str, str]) -> bool:
    """Every label of `spec` has a value matching one of its patterns."""
    return all(matches_any(patterns, labels.get(label)) for label, patterns in spec.items())
