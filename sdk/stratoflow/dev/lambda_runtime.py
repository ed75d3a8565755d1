"""Invoking a Lambda handler as Lambda would: load it from functions/, give it a context."""

from __future__ import annotations

import importlib.util
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from stratoflow.exceptions import StratoflowError

Handler = Callable[[dict[str, Any], Any], Any]


class FunctionsNotFound(StratoflowError):
    """The functions/ directory with the Lambda handlers is not where it was looked for."""


@dataclass
class LocalLambdaContext:
    """What a handler reads from Lambda's context object."""

    function_name: str
    timeout_seconds: float = 900.0
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return int(max(0.0, self.timeout_seconds - (time.monotonic() - self._started)) * 1000)


def functions_dir(start: Path | None = None) -> Path:
    """The repository's functions/ directory (strato dev runs from a stratoflow checkout)."""
    candidates = [Path.cwd(), *(p for p in Path(__file__).resolve().parents)]
    if start is not None:
        candidates.insert(0, start)
    for base in candidates:
        if (base / "functions" / "scheduler" / "handler.py").is_file():
            return base / "functions"
    raise FunctionsNotFound(
        "Could not find functions/<name>/handler.py: run this from a stratoflow checkout "
        "(the directory with functions/ and sdk/)."
    )


_loaded: dict[Path, ModuleType] = {}


def load_handler(name: str, attribute: str = "handler", *, base: Path | None = None) -> Handler:
    """`functions/<name>/handler.py:<attribute>`, imported once per process."""
    path = (base or functions_dir()) / name / "handler.py"
    module = _loaded.get(path)
    if module is None:
        spec = importlib.util.spec_from_file_location(f"stratoflow_function_{name}", path)
        if spec is None or spec.loader is None:
            raise FunctionsNotFound(f"No Lambda handler at {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        _loaded[path] = module
    handler: Handler = getattr(module, attribute)
    return handler


def invoke(
    name: str, event: dict[str, Any], *, attribute: str = "handler", timeout_seconds: float = 900.0
) -> Any:
    return load_handler(name, attribute)(
        event,
        LocalLambdaContext(function_name=f"stratoflow-{name}", timeout_seconds=timeout_seconds),
    )
