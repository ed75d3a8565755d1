"""Reading `stratoflow.yaml`, with errors that point at the offending field."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from stratoflow.deployments.models import ProjectConfig
from stratoflow.exceptions import StratoflowError

CONFIG_FILE = "stratoflow.yaml"


class ConfigError(StratoflowError):
    """`stratoflow.yaml` is missing or invalid."""


def load_project(path: Path) -> ProjectConfig:
    """The project configuration in `path` (a file, or a directory holding stratoflow.yaml)."""
    if not path.exists():
        what = "file" if path.suffix in (".yaml", ".yml") else "directory"
        raise ConfigError(
            f"The {what} {path} does not exist. Pass the project directory that contains "
            f"{CONFIG_FILE}."
        )
    file = path / CONFIG_FILE if path.is_dir() else path
    try:
        raw = yaml.safe_load(file.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"No {file.name} at {file.parent}. Create one with a `deployments:` list "
            "(see docs/deployments.md)."
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping with `deployments:` at the top")
    try:
        return ProjectConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "\n  - ".join(f"{_path(err['loc'], raw)}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"{file} is invalid:\n  - {problems}") from None


_SCHEDULE_KINDS = ("cron", "interval", "rrule")


def _path(location: tuple[int | str, ...], raw: object) -> str:
    """`deployments[0] (nightly).schedules[1].cron` from pydantic's location tuple.

    A schedule's location holds parts that are not keys of the file: `schedule` when the
    item is written flat (`- cron: ...`), and the schedule kind pydantic tags the union
    with (`schedule.cron.cron`); both are left out."""
    parts: list[str] = []
    node = raw
    after_schedule = False
    for part in location:
        if after_schedule and part in _SCHEDULE_KINDS:
            after_schedule = False
            continue
        after_schedule = part == "schedule"
        if after_schedule and isinstance(node, dict) and part not in node:
            continue
        if isinstance(part, int):
            label = f"[{part}]"
            if isinstance(node, list) and part < len(node):
                node = node[part]
                name = node.get("name") if isinstance(node, dict) else None
                if name:
                    label += f" ({name})"
            parts.append(label)
        else:
            parts.append(f".{part}" if parts else str(part))
            node = node.get(part) if isinstance(node, dict) else None
    return "".join(parts)
