"""Artifacts and variables as backends store them, and the checks Prefect 3 applies.

A leaf module (pydantic and the standard library only), so that the public APIs
(`stratoflow.artifacts`, `stratoflow.variables`), the backends and the CLI share one
definition of a valid artifact key, variable name and value.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from stratoflow.exceptions import StratoflowError

# Variables (Prefect 3: prefect.types, prefect.types.names)
VARIABLE_NAME_MAX_LENGTH = 255
VARIABLE_VALUE_MAX_LENGTH = 5000
"""Characters of a variable's value as compact JSON (Prefect's `MAX_VARIABLE_VALUE_LENGTH`)."""
_VARIABLE_NAME = re.compile(r"[a-z0-9_-]+")

# Artifacts (Prefect 3: prefect.types.names.ArtifactKey)
ARTIFACT_KEY_MAX_LENGTH = 255
"""Prefect sets no bound; this one keeps a key's partition well under DynamoDB's 2 KB."""
_ARTIFACT_KEY = re.compile(r"[a-z0-9-]+")
DESCRIPTION_MAX_BYTES = 64 * 1024
"""An artifact's description (UTF-8): it is kept in the artifact's DynamoDB item."""
INLINE_DATA_MAX_BYTES = 64 * 1024
"""An artifact body (its JSON) up to this size is kept in the item; a larger one goes to
the results bucket (AWS backend)."""
DATA_MAX_BYTES = 4 * 1024 * 1024
"""The largest artifact body (its JSON) accepted, on every backend."""

ARTIFACT_TYPES = ("markdown", "table", "link", "progress", "image")
"""The types Prefect's helpers create (`Artifact(type=...)` may name any other)."""


class InvalidVariableError(StratoflowError, ValueError):
    """A variable name or value that Prefect would refuse too."""


class VariableAlreadyExists(StratoflowError, ValueError):
    """`Variable.set` of an existing name without `overwrite=True` (a ValueError, as in
    Prefect)."""


class InvalidArtifactError(StratoflowError, ValueError):
    """An artifact key, description or body that cannot be stored."""


class ArtifactBodyUnavailable(StratoflowError):
    """An artifact body kept in the results bucket that cannot be shown: expired with
    the bucket's lifecycle, or not the body its record describes."""


def validate_variable_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidVariableError(f"A variable name must be a non-empty string, got {name!r}.")
    if len(name) > VARIABLE_NAME_MAX_LENGTH:
        raise InvalidVariableError(
            f"Variable name {name[:40]!r}... is {len(name)} characters long; the limit is "
            f"{VARIABLE_NAME_MAX_LENGTH}."
        )
    if not _VARIABLE_NAME.fullmatch(name):
        raise InvalidVariableError(
            f"Variable name {name!r} must only contain lowercase letters, numbers, and "
            f"dashes or underscores, e.g. {_suggest(name, '_')!r}."
        )
    return name


def is_valid_variable_name(name: object) -> bool:
    try:
        validate_variable_name(name)
    except InvalidVariableError:
        return False
    return True


def _strict_json(value: Any, where: str) -> Any:
    """`value` with tuples as lists; raises for anything JSON cannot hold exactly."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidVariableError(f"{where} must be JSON: {value!r} is not a JSON number.")
        return value
    if isinstance(value, list | tuple):
        return [_strict_json(item, where) for item in value]
    if isinstance(value, dict):
        bad = [key for key in value if not isinstance(key, str)]
        if bad:
            raise InvalidVariableError(
                f"{where} must be JSON: object keys must be strings, got {bad[0]!r}."
            )
        return {key: _strict_json(item, where) for key, item in value.items()}
    raise InvalidVariableError(
        f"{where} must be JSON (str, int, float, bool, None, list or dict), "
        f"got {type(value).__name__}."
    )


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def validate_variable_value(value: Any, name: str = "") -> Any:
    """The value as stored (tuples become lists); at most 5000 characters of JSON."""
    where = f"The value of variable {name!r}" if name else "A variable value"
    checked = _strict_json(value, where)
    length = len(compact_json(checked))
    if checked is not None and length > VARIABLE_VALUE_MAX_LENGTH:
        raise InvalidVariableError(
            f"{where} is {length} characters as JSON; the limit is "
            f"{VARIABLE_VALUE_MAX_LENGTH}. Keep large data in S3 and store its key."
        )
    return checked


def validate_tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str) or not all(isinstance(tag, str) for tag in tags):
        raise InvalidVariableError(f"Tags must be a list of strings, got {tags!r}.")
    return list(tags)


def validate_artifact_key(key: object) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key:
        raise InvalidArtifactError(
            f"An artifact key must be a non-empty string (or None for no key), got {key!r}."
        )
    if len(key) > ARTIFACT_KEY_MAX_LENGTH:
        raise InvalidArtifactError(
            f"Artifact key {key[:40]!r}... is {len(key)} characters long; the limit is "
            f"{ARTIFACT_KEY_MAX_LENGTH}."
        )
    if not _ARTIFACT_KEY.fullmatch(key):
        raise InvalidArtifactError(
            f"Artifact key {key!r} must only contain lowercase letters, numbers, and "
            f"dashes, e.g. {_suggest(key, '-')!r}."
        )
    return key


def is_valid_artifact_key(key: object) -> bool:
    try:
        validate_artifact_key(key)
    except InvalidArtifactError:
        return False
    return key is not None


def _suggest(text: str, joiner: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return joiner.join(words) or "my-name".replace("-", joiner)


def sort_time(moment: datetime) -> str:
    """Fixed-width ISO UTC time (microseconds always), so that strings sort by instant."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")


class VariableRecord(BaseModel):
    """A stored variable (the fields of Prefect's `Variable` response)."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: Any
    tags: list[str] = Field(default_factory=list)
    created: datetime
    updated: datetime


class ArtifactRecord(BaseModel):
    """A stored artifact version, with the fields of Prefect's artifact response.

    `data` is what the helper formatted: the markdown, the table as a JSON string, the
    image URL, the progress as a number. Listings leave a body kept in the results
    bucket unread: `body_loaded` is then False and `data` None (`body_bytes` says how
    big it is).
    """

    model_config = ConfigDict(frozen=True)

    id: UUID
    key: str | None = None
    type: str | None = None
    description: str | None = None
    data: Any = None
    metadata_: dict[str, str] | None = None
    flow_run_id: str | None = None
    task_run_id: str | None = None
    created: datetime
    updated: datetime
    body_bytes: int = 0
    body_loaded: bool = True
    body_sha256: str | None = None
    """Set when the body is kept in the results bucket: what it must hash to."""

    def sort_key(self) -> str:
        """Creation order: `<created, ISO UTC>#<id>` (the id breaks ties)."""
        return f"{sort_time(self.created)}#{self.id}"


def artifact_body(data: Any) -> str:
    """The JSON an artifact's data is kept as (checked for size)."""
    try:
        body = compact_json(data)
    except (TypeError, ValueError) as exc:
        raise InvalidArtifactError(f"An artifact's data must be JSON: {exc}") from None
    size = len(body.encode())
    if size > DATA_MAX_BYTES:
        raise InvalidArtifactError(
            f"The artifact is {size} bytes as JSON; the limit is {DATA_MAX_BYTES}. Keep "
            "large data in S3 and link to it (create_link_artifact)."
        )
    return body


def validate_description(description: object) -> str | None:
    if description is None:
        return None
    if not isinstance(description, str):
        raise InvalidArtifactError(
            f"An artifact description must be a string, got {type(description).__name__}."
        )
    size = len(description.encode())
    if size > DESCRIPTION_MAX_BYTES:
        raise InvalidArtifactError(
            f"The artifact description is {size} bytes; the limit is {DESCRIPTION_MAX_BYTES}. "
            "Put long text in the artifact itself (create_markdown_artifact)."
        )
    return description
