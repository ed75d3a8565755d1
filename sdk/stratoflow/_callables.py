"""Binding call arguments to a function's parameters and calling it back with them."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

_P = inspect.Parameter
T = TypeVar("T")


class BoundSignature:
    """A function's signature, with the fast paths of plain calls precomputed: binding
    when every parameter is positional-or-keyword, calling with keywords only."""

    __slots__ = ("_defaults", "_plain", "_simple", "names", "signature")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.signature = inspect.signature(fn)
        parameters = self.signature.parameters.values()
        kinds = [p.kind for p in parameters]
        self._simple = all(k in (_P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY) for k in kinds)
        self._plain = all(k is _P.POSITIONAL_OR_KEYWORD for k in kinds)
        self._defaults = tuple(p.default for p in parameters)
        self.names = tuple(self.signature.parameters)

    def bind(self, owner: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters by name, defaults applied. Raises TypeError naming `owner` on a bad call."""
        if self._plain:
            # Every call binds its arguments (each task call): what inspect's bind and
            # apply_defaults give for a call that fits, without their generality.
            arguments = self._bind_plain(args, kwargs)
            if arguments is not None:
                return arguments
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(
                f"{owner} was called with arguments that do not match its signature "
                f"{self.signature}: {exc}"
            ) from None
        bound.apply_defaults()
        return bound.arguments

    def _bind_plain(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The parameters in signature order, or None when the call does not fit (too
        many arguments, one missing, unknown or given twice): inspect then says why."""
        names = self.names
        given = len(args)
        if given > len(names):
            return None
        arguments = dict(zip(names, args, strict=False))  # fewer args than names
        if given == len(names) and not kwargs:
            return arguments
        used = 0
        for name, default in zip(names[given:], self._defaults[given:], strict=True):
            if name in kwargs:
                arguments[name] = kwargs[name]
                used += 1
            elif default is _P.empty:
                return None
            else:
                arguments[name] = default
        return arguments if used == len(kwargs) else None

    def call(self, fn: Callable[..., Any], parameters: Mapping[str, Any]) -> Any:
        if self._simple:
            return fn(**parameters)
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for name, param in self.signature.parameters.items():
            if name not in parameters:
                continue
            value = parameters[name]
            if param.kind is _P.POSITIONAL_ONLY:
                args.append(value)
            elif param.kind is _P.VAR_POSITIONAL:
                args.extend(value)
            elif param.kind is _P.VAR_KEYWORD:
                kwargs.update(value)
            else:
                kwargs[name] = value
        return fn(*args, **kwargs)


def unwrap_method(fn: Any) -> tuple[Callable[..., Any], bool, bool]:
    """(function, is classmethod, is staticmethod) for `@task`/`@flow` put on top of
    `@classmethod` or `@staticmethod`, as Prefect allows."""
    if isinstance(fn, classmethod):
        return fn.__func__, True, False
    if isinstance(fn, staticmethod):
        return fn.__func__, False, True
    return fn, False, False


def bound_copy(definition: T, target: Any) -> T:
    """A copy of a frozen `Task`/`Flow` whose calls pass `target` first (the instance
    for a method, the class for a classmethod): what `obj.method` gives."""
    copy = object.__new__(type(definition))
    copy.__dict__.update(definition.__dict__)
    copy.__dict__["_bound"] = (target,)
    return copy


def identity_key(fn: Callable[..., Any], name: str) -> str:
    """A stable key for a flow or task: its name plus a short hash of where it is defined."""
    where = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', name)}"
    return f"{name}-{hashlib.blake2b(where.encode(), digest_size=4).hexdigest()}"


def render_run_name(
    template: str | Callable[[], str], parameters: Mapping[str, Any], owner: str
) -> str:
    """Render a `flow_run_name`/`task_run_name` template such as `'load-{table}'`."""
    if callable(template):
        return str(template())
    try:
        return template.format_map(parameters)
    except (KeyError, IndexError, AttributeError) as exc:
        names = ", ".join(parameters) or "none"
        raise ValueError(
            f"The run name template {template!r} of {owner} refers to {exc}, which is not "
            f"one of its parameters ({names})."
        ) from None
