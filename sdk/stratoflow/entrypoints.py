"""Loading a flow from an entrypoint such as `flows/etl.py:etl`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from stratoflow.exceptions import StratoflowError
from stratoflow.flows import Flow


class EntrypointError(StratoflowError):
    """An entrypoint cannot be loaded: bad format, missing file, or no such flow."""


def load_flow(entrypoint: str) -> Flow[..., object]:
    """Import `path/to/file.py:flow_function` and return the flow object."""
    path_text, sep, attribute = entrypoint.rpartition(":")
    if not sep or not path_text or not attribute:
        raise EntrypointError(
            f"Entrypoint {entrypoint!r} must look like 'path/to/file.py:flow_function'."
        )
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise EntrypointError(f"Entrypoint {entrypoint!r}: no file at {path}.")
    module_name = f"stratoflow_entrypoint_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise EntrypointError(f"Entrypoint {entrypoint!r}: {path} is not a Python file.")
    module = importlib.util.module_from_spec(spec)
    # The flow's own directory comes first so that its sibling modules import.
    sys.path.insert(0, str(path.parent))
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise EntrypointError(
            f"Entrypoint {entrypoint!r}: importing {path.name} raised {type(exc).__name__}: {exc}"
        ) from exc
    candidate = getattr(module, attribute, None)
    if candidate is None:
        flows = sorted(name for name, value in vars(module).items() if isinstance(value, Flow))
        raise EntrypointError(
            f"Entrypoint {entrypoint!r}: {path.name} has no {attribute!r}. "
            f"Flows in that file: {', '.join(flows) or 'none'}."
        )
    if not isinstance(candidate, Flow):
        raise EntrypointError(
            f"Entrypoint {entrypoint!r}: {attribute!r} is not a flow; decorate it with @flow."
        )
    return candidate
