"""Binding call arguments (stratoflow._callables): the fast path for plain signatures
gives what inspect's bind and apply_defaults give, and a bad call names its owner."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratoflow._callables import BoundSignature

_MISSING = object()


def plain(a: int, b: int = 2, c: Any = None, d: list[int] | None = None) -> None:
    """Every parameter positional-or-keyword: the fast path."""


def mixed(a: int, /, b: int = 2, *rest: int, c: int = 3, **extra: int) -> None:
    """Every other kind: the general path."""


def _inspect_bind(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except TypeError:
        return _MISSING
    bound.apply_defaults()
    return bound.arguments


NAMES = st.sampled_from(["a", "b", "c", "d", "e"])


@given(
    args=st.lists(st.integers(), max_size=5).map(tuple),
    kwargs=st.dictionaries(NAMES, st.integers(), max_size=4),
)
def test_plain_calls_bind_as_inspect_does(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for fn in (plain, mixed):
        expected = _inspect_bind(fn, args, kwargs)
        signature = BoundSignature(fn)
        if expected is _MISSING:
            with pytest.raises(TypeError, match="task 't' was called with arguments"):
                signature.bind("task 't'", args, kwargs)
        else:
            bound = signature.bind("task 't'", args, kwargs)
            assert bound == expected
            assert list(bound) == list(expected)  # in the signature's order


def test_defaults_are_the_very_objects_of_the_signature() -> None:
    shared: list[int] = []

    def fn(a: int, items: list[int] = shared) -> None: ...

    assert BoundSignature(fn).bind("task 'fn'", (1,), {})["items"] is shared


def test_a_bad_call_says_why() -> None:
    signature = BoundSignature(plain)
    with pytest.raises(TypeError, match="missing a required argument: 'a'"):
        signature.bind("task 'plain'", (), {"b": 1})
    with pytest.raises(TypeError, match="multiple values for argument 'a'"):
        signature.bind("task 'plain'", (1,), {"a": 1})
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        signature.bind("task 'plain'", (1,), {"z": 1})
    with pytest.raises(TypeError, match="too many positional arguments"):
        signature.bind("task 'plain'", (1, 2, 3, 4, 5), {})
