"""Argument annotations for task calls (Prefect's `prefect.utilities.annotations`).

- `unmapped(x)`: pass `x` whole to every mapped task run instead of mapping over it.
- `allow_failure(x)`: run the downstream task even if the upstream `x` failed.
- `quote(x)`: hand `x` to the task as it is: futures and states inside it are neither
  waited for nor resolved, and the engine does not walk through it (for large objects).
- `opaque(x)`: resolve `x` itself when it is a future or a state, but do not walk into
  the value (futures nested inside it stay futures).

Each wrapper has `.value`, `.unwrap()` and `.rewrap(new_value)`, as in Prefect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _Annotation(Generic[T]):
    """Shared by the wrappers: `.unwrap()` and `.rewrap()` of Prefect's BaseAnnotation."""

    __slots__ = ()
    value: T

    def unwrap(self) -> T:
        return self.value

    def rewrap(self, value: T) -> Any:
        return type(self)(value)  # type: ignore[call-arg]


@dataclass(frozen=True, slots=True)
class unmapped(_Annotation[T]):
    """Pass this argument whole to every mapped task run instead of mapping over it."""

    value: T


@dataclass(frozen=True, slots=True)
class allow_failure(_Annotation[T]):
    """Run the downstream task even if this upstream future fails.

    The downstream task receives the upstream's exception as the argument's value.
    """

    value: T


@dataclass(frozen=True, slots=True)
class quote(_Annotation[T]):
    """Pass this argument as it is: no resolution of futures or states inside it, and
    no walk through its contents (a large dict or DataFrame is not visited)."""

    value: T

    def unquote(self) -> T:
        return self.value


@dataclass(frozen=True, slots=True)
class opaque(_Annotation[T]):
    """Resolve this argument when it is a future or a state, without walking into the
    resolved value: nested futures are left as they are."""

    value: T


ANNOTATIONS = (unmapped, allow_failure, quote, opaque)


def unwrap(value: Any) -> Any:
    while isinstance(value, ANNOTATIONS):
        value = value.value
    return value
