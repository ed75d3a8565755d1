"""Loading a flow from an entrypoint such as `flows/etl.py:etl`."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path, PurePosixPath, PureWindowsPath

from stratoflow.exceptions import StratoflowError
from stratoflow.flows import Flow


class EntrypointError(StratoflowError):
    """An entrypoint cannot be loaded: bad format, missing file, or no such flow."""


def load_flow(entrypoint: str, *, root: Path | None = None) -> Flow[..., object]:
    """Import `path/to/file.py:flow_function` and return the flow object.

    With `root` (the directory of a deployment's code bundle), the path is relative to
    `root` and must stay inside it: absolute paths, `..` and symlinks leading out are
    refused, since a deployment's entrypoint is not trusted to point at code of its own.
    """
    path_text, sep, attribute = entrypoint.rpartition(":")
    if not sep or not path_text or not attribute:
        raise EntrypointError(
            f"Entrypoint {entrypoint!r} must look like 'path/to/file.py:flow_function'."
        )
    if root is None:
        path = Path(path_text).expanduser().resolve()
    else:
        path = resolve_in_bundle(root, path_text, entrypoint)
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


def resolve_in_bundle(root: Path, path_text: str, entrypoint: str) -> Path:
    """The real path of an entrypoint's file inside a code bundle's directory `root`."""
    fix = "Redeploy with an entrypoint relative to the project, like 'flows/etl.py:etl'."
    windows = PureWindowsPath(path_text)
    if PurePosixPath(path_text).is_absolute() or windows.drive or windows.root:
        raise EntrypointError(
            f"Entrypoint {entrypoint!r}: absolute paths are refused, the file must be inside "
            f"the deployment's code bundle. {fix}"
        )
    if ".." in re.split(r"[\\/]", path_text):
        raise EntrypointError(
            f"Entrypoint {entrypoint!r}: '..' is refused, the file must be inside the "
            f"deployment's code bundle. {fix}"
        )
    real_root = root.resolve(strict=True)
    try:
        path = (real_root / path_text).resolve(strict=True)
    except FileNotFoundError:
        raise EntrypointError(
            f"Entrypoint {entrypoint!r}: the deployment's code bundle has no file "
            f"{path_text!r}. {fix}"
        ) from None
    except (OSError, RuntimeError) as exc:  # a symlink loop, a component that is a file
        raise EntrypointError(f"Entrypoint {entrypoint!r}: cannot resolve it: {exc}.") from None
    if not path.is_relative_to(real_root):
        raise EntrypointError(
            f"Entrypoint {entrypoint!r}: a symlink leads outside the deployment's code bundle "
            f"(to {path}): refused. {fix}"
        )
    return path
