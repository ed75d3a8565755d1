"""Resolving futures and states passed as task arguments, recording upstream runs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from stratoflow.annotations import allow_failure, opaque, quote, unmapped
from stratoflow.engine.collections import rebuild_children
from stratoflow.futures import StratoFuture, StratoFutureList
from stratoflow.states import State, StateType

WAIT_FOR_KEY = "__wait_for__"
_PLAIN = (str, int, float, bool, type(None), bytes)


@dataclass(slots=True)
class UpstreamFailure:
    parameter: str
    task_run_name: str
    state: State


@dataclass(slots=True)
class ResolvedInputs:
    parameters: dict[str, Any]
    task_inputs: dict[str, list[str]] = field(default_factory=dict)
    failure: UpstreamFailure | None = None


class _Resolver:
    """Replaces futures and states by their results, inside any container Prefect walks."""

    __slots__ = ("failure", "parameter", "seen", "upstream")

    def __init__(self) -> None:
        self.upstream: list[str] = []
        self.failure: UpstreamFailure | None = None
        self.parameter = ""
        self.seen: dict[int, Any] = {}

    def visit(self, value: Any, allowed: bool) -> Any:
        if isinstance(value, _PLAIN):
            return value
        if isinstance(value, StratoFuture):
            self.upstream.append(value.task_run_id)
            state = value.final_state()
            return self._from_state(state, value.task_run.name, allowed)
        if isinstance(value, State):
            return self._from_state(value, value.name, allowed)
        if isinstance(value, allow_failure):
            return self.visit(value.value, True)
        if isinstance(value, unmapped):
            return self.visit(value.value, allowed)
        if isinstance(value, quote):  # as it is: nothing inside is resolved
            return value.value
        if isinstance(value, opaque):  # the value itself is resolved, not walked into
            inner = value.value
            if isinstance(inner, StratoFuture | State):
                return self.visit(inner, allowed)
            return inner
        if type(value) is StratoFutureList:  # a map()'s futures become a plain list
            return [self.visit(v, allowed) for v in value]
        return rebuild_children(value, lambda item: self.visit(item, allowed), self.seen)

    def _from_state(self, state: State, run_name: str, allowed: bool) -> Any:
        if state.type is StateType.COMPLETED:
            return state.result()
        if not allowed and self.failure is None:
            self.failure = UpstreamFailure(self.parameter, run_name, state)
        return state.result(raise_on_failure=False)


def resolve_inputs(parameters: dict[str, Any], wait_for: Iterable[Any] | None) -> ResolvedInputs:
    """Wait for upstream futures and replace them (and states) by their results.

    An upstream run that did not complete makes `failure` non-None unless the argument
    was wrapped in `allow_failure()`; the downstream task must then not run.
    """
    resolved = ResolvedInputs(parameters={})
    resolver: _Resolver | None = None  # built for the first value to walk: most have none
    for name, value in parameters.items():
        if isinstance(value, _PLAIN):
            resolved.parameters[name] = value
            continue
        if resolver is None:
            resolver = _Resolver()
        resolver.parameter = name
        resolver.upstream = []
        resolved.parameters[name] = resolver.visit(value, False)
        if resolver.upstream:
            resolved.task_inputs[name] = resolver.upstream
    if wait_for:
        if resolver is None:
            resolver = _Resolver()
        resolver.parameter = "wait_for"
        resolver.upstream = []
        for item in wait_for:
            resolver.visit(item, False)
        if resolver.upstream:
            resolved.task_inputs[WAIT_FOR_KEY] = resolver.upstream
    if resolver is not None:
        resolved.failure = resolver.failure
    return resolved
