"""Finding the tasks a task worker serves: `module:task`, `path/to/file.py:task`, or a
module name alone (every task defined at its top level).

A task's key comes from its module and qualified name (`stratoflow._callables.identity_key`),
so the worker must import a task under the module name its callers import it from: a
file is imported as the module named after its stem, with its directory on `sys.path`.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from stratoflow.exceptions import OptionError
from stratoflow.tasks import Task


def load_tasks(specs: list[str] | tuple[str, ...]) -> list[Task[..., Any]]:
    """The tasks `specs` name, in order, without duplicates."""
    found: dict[str, Task[..., Any]] = {}
    for spec in specs:
        for task in _load(spec.strip()):
            found.setdefault(task.task_key, task)
    if not found:
        raise OptionError("Name at least one task to serve, e.g. `my_module:my_task`.")
    return list(found.values())


def _load(spec: str) -> list[Task[..., Any]]:
    module_part, _, attribute = spec.partition(":")
    module = _import(module_part, spec)
    if not attribute:
        tasks = [value for value in vars(module).values() if isinstance(value, Task)]
        if not tasks:
            raise OptionError(f"Module {module.__name__!r} defines no task (@task) to serve.")
        return tasks
    value = getattr(module, attribute, None)
    if not isinstance(value, Task):
        what = "nothing" if value is None else type(value).__name__
        raise OptionError(
            f"{spec!r} names {what}, not a task: give `module:name` of a function decorated "
            "with @task."
        )
    return [value]


def _import(name: str, spec: str) -> ModuleType:
    if name.endswith(".py"):
        path = Path(name).expanduser().resolve()
        if not path.is_file():
            raise OptionError(f"{spec!r}: no file {path}.")
        directory = str(path.parent)
        if directory not in sys.path:
            sys.path.insert(0, directory)
        name = path.stem
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise OptionError(
            f"{spec!r}: module {exc.name!r} was not found. Run from the directory that holds "
            "it, or add it to PYTHONPATH."
        ) from None
