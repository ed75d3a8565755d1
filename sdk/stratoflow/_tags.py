"""`with tags("a", "b"):` adds tags to every run created inside the block."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

_current: ContextVar[tuple[str, ...]] = ContextVar("stratoflow_tags", default=())


@contextlib.contextmanager
def tags(*names: str) -> Iterator[tuple[str, ...]]:
    """Add `names` to the tags of flow and task runs created in this block (nestable)."""
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"tags() takes strings, got {name!r}")
    combined = merge_tags(_current.get(), names)
    token = _current.set(combined)
    try:
        yield combined
    finally:
        _current.reset(token)


def current_tags() -> tuple[str, ...]:
    return _current.get()


def merge_tags(*groups: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(tag for group in groups for tag in group))
