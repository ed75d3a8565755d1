"""Walking the containers Prefect's `visit_collection` walks, rebuilding what changed.

Task arguments and flow return values may hold futures and states anywhere inside
lists, tuples (named ones too), sets, dicts, dataclasses and pydantic models. The
engine replaces them (by results, or by states) and rebuilds only the containers whose
items changed, so an argument without futures is passed on as the very same object.
Generators are never iterated (that would consume them), and objects seen before are
not walked twice (a container that holds itself does not loop).
"""

from __future__ import annotations

import dataclasses
import types
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

Visit = Callable[[Any], Any]


def rebuild_children(value: Any, visit: Visit, seen: dict[int, Any]) -> Any:
    """`value` with `visit` applied to each of its items (fields, keys and values):
    the same object when nothing changed, else a rebuilt container of its type."""
    key = id(value)
    if key in seen:
        return seen[key]
    seen[key] = value
    rebuilt = _rebuild(value, visit)
    seen[key] = rebuilt
    return rebuilt


def _rebuild(value: Any, visit: Visit) -> Any:
    if isinstance(value, types.GeneratorType | types.AsyncGeneratorType):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        items = [visit(item) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        kind = type(value)
        if hasattr(kind, "_make"):  # a named tuple
            return kind._make(items)
        return kind(items)
    if isinstance(value, dict):
        pairs = [(visit(k), visit(v)) for k, v in value.items()]
        changed = any(
            new_key is not old_key or new_value is not old_value
            for (new_key, new_value), (old_key, old_value) in zip(pairs, value.items(), strict=True)
        )
        if not changed:
            return value
        if isinstance(value, defaultdict):
            return type(value)(value.default_factory, pairs)
        return type(value)(pairs)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = [f.name for f in dataclasses.fields(value) if f.init]
        updates = {}
        for name in names:
            old = getattr(value, name)
            new = visit(old)
            if new is not old:
                updates[name] = new
        return dataclasses.replace(value, **updates) if updates else value
    if isinstance(value, BaseModel):
        # The fields (and extra fields), not iter(value): a model may define __iter__.
        original = {**value.__dict__, **(value.__pydantic_extra__ or {})}
        updated = {name: visit(item) for name, item in original.items()}
        if all(updated[name] is original[name] for name in original):
            return value
        # model_construct: no validation (the values are already the model's), and it
        # works for frozen models too.
        model = value.model_construct(_fields_set=value.model_fields_set, **updated)
        for private in value.__private_attributes__:
            if hasattr(value, private):
                setattr(model, private, getattr(value, private))
        return model
    return value
