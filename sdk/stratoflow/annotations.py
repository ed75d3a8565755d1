"""Argument annotations for task calls: `unmapped` and `allow_failure`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class unmapped(Generic[T]):
    """Pass this argument whole to every mapped task run instead of mapping over it."""

    value: T


@dataclass(frozen=True, slots=True)
class allow_failure(Generic[T]):
    """Run the downstream task even if this upstream future fails.

    The downstream task receives the upstream's exception as the argument's value.
    """

    value: T


def unwrap(value: Any) -> Any:
    while isinstance(value, unmapped | allow_failure):
        value = value.value
    return value
