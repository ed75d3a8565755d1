"""`Artifact` and its typed forms, as in Prefect 3 (`prefect.artifacts`).

An artifact is created by `create()` (or a `create_*_artifact` helper), linked to the
flow run and task run it is created in, and stored by the current backend. Artifacts
with the same `key` are versions of one artifact: `Artifact.get(key)` returns the newest.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import uuid
import weakref
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, field_validator

from stratoflow._async_dispatch import async_dispatch
from stratoflow.clock import Clock
from stratoflow.context import flow_run_context, get_services, task_run_context
from stratoflow.records import (
    ArtifactRecord,
    InvalidArtifactError,
    artifact_body,
    is_valid_artifact_key,
    validate_artifact_key,
    validate_description,
)

logger = logging.getLogger("stratoflow.artifacts")

PROGRESS_MIN = 0.0
PROGRESS_MAX = 100.0


_last_created: weakref.WeakKeyDictionary[Clock, datetime] = weakref.WeakKeyDictionary()
_last_created_lock = threading.Lock()


def _creation_time(clock: Clock) -> datetime:
    """The clock's time, or a microsecond after the last artifact created with this clock:
    versions of a key created in one process sort in call order even when the clock has
    not moved (a fake clock, a coarse system clock)."""
    now = clock.now()
    with _last_created_lock:
        last = _last_created.get(clock)
        if last is not None and now <= last:
            now = last + timedelta(microseconds=1)
        _last_created[clock] = now
        return now


def current_run_ids() -> tuple[str | None, str | None]:
    """(task run id, flow run id) of the run this is called in, as Prefect links them."""
    task_ctx = task_run_context.get()
    if task_ctx is not None:
        return task_ctx.task_run.id, task_ctx.task_run.flow_run_id
    flow_ctx = flow_run_context.get()
    if flow_ctx is not None:
        return None, flow_ctx.flow_run.id
    return None, None


class Artifact(BaseModel):
    """A piece of data a flow or task run creates.

    Arguments:
        type: what the data is (`markdown`, `table`, `link`, `progress`, `image`, ...).
        key: lowercase letters, numbers and dashes; artifacts with one key are versions.
        description: a markdown description.
        data: a JSON value (stored as its JSON text, as Prefect does).
    """

    key: str | None = None
    type: str | None = None
    description: str | None = None
    data: Any = None
    metadata_: dict[str, str] | None = None
    flow_run_id: str | None = None
    task_run_id: str | None = None

    @field_validator("key")
    @classmethod
    def _valid_key(cls, key: str | None) -> str | None:
        return validate_artifact_key(key)

    def format(self) -> Any:
        """The data as stored."""
        return json.dumps(self.data)

    async def aformat(self) -> Any:
        return self.format()

    def _create(self) -> ArtifactRecord:
        task_run_id, flow_run_id = current_run_ids()
        data = self.format()
        body = artifact_body(data)  # JSON and size checked before anything is written
        services = get_services()
        now = _creation_time(services.clock)
        record = ArtifactRecord(
            id=uuid.uuid4(),
            key=self.key,
            type=self.type,
            description=validate_description(self.description),
            data=data,
            metadata_=self.metadata_,
            flow_run_id=self.flow_run_id or flow_run_id,
            task_run_id=self.task_run_id or task_run_id,
            created=now,
            updated=now,
            body_bytes=len(body.encode()),
        )
        return services.backend.artifacts.create(record)

    async def acreate(self) -> ArtifactRecord:
        """Store the artifact; returns it as stored (its `id` is a UUID)."""
        return await asyncio.to_thread(self._create)

    @async_dispatch(acreate)
    def create(self) -> ArtifactRecord:
        """Store the artifact; returns it as stored (its `id` is a UUID)."""
        return self._create()

    @classmethod
    def _get(cls, key: str | None) -> ArtifactRecord | None:
        if key is not None and not is_valid_artifact_key(key):
            return None  # no artifact can have that key
        return get_services().backend.artifacts.latest(key)

    @classmethod
    async def aget(cls, key: str | None = None) -> ArtifactRecord | None:
        """The newest version of the artifact `key` (of any artifact when None)."""
        return await asyncio.to_thread(cls._get, key)

    @classmethod
    @async_dispatch(aget)
    def get(cls, key: str | None = None) -> ArtifactRecord | None:
        """The newest version of the artifact `key` (of any artifact when None)."""
        return cls._get(key)

    @classmethod
    def _get_or_create(
        cls, key: str | None, description: str | None, data: Any, **kwargs: Any
    ) -> tuple[ArtifactRecord, bool]:
        found = cls._get(key)
        if found is not None:
            return found, False
        return cls(key=key, description=description, data=data, **kwargs)._create(), True

    @classmethod
    async def aget_or_create(
        cls,
        key: str | None = None,
        description: str | None = None,
        data: Any = None,
        **kwargs: Any,
    ) -> tuple[ArtifactRecord, bool]:
        """(the newest version of `key`, False), or (a new artifact, True)."""
        return await asyncio.to_thread(cls._get_or_create, key, description, data, **kwargs)

    @classmethod
    @async_dispatch(aget_or_create)
    def get_or_create(
        cls,
        key: str | None = None,
        description: str | None = None,
        data: Any = None,
        **kwargs: Any,
    ) -> tuple[ArtifactRecord, bool]:
        """(the newest version of `key`, False), or (a new artifact, True)."""
        return cls._get_or_create(key, description, data, **kwargs)


class LinkArtifact(Artifact):
    link: str
    link_text: str | None = None
    type: str | None = "markdown"

    def format(self) -> str:
        return f"[{self.link_text or self.link}]({self.link})"


class MarkdownArtifact(Artifact):
    markdown: str
    type: str | None = "markdown"

    def format(self) -> str:
        return self.markdown


TableData = dict[str, list[Any]] | list[dict[str, Any]] | list[list[Any]]


def _without_nan(value: Any) -> Any:
    if isinstance(value, list):
        return [_without_nan(item) for item in value]
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


class TableArtifact(Artifact):
    """A table: a list of rows (dicts), a dict of columns (lists), or a list of lists.
    NaN cells are stored as null, as Prefect does."""

    table: TableData
    type: str | None = "table"

    def format(self) -> str:
        try:
            return json.dumps(_without_nan(self.table))
        except (TypeError, ValueError) as exc:
            raise InvalidArtifactError(
                f"A table artifact's cells must be JSON values ({exc}); convert them first, "
                "e.g. str(value) or value.isoformat()."
            ) from None


class ProgressArtifact(Artifact):
    """Progress in percent; a value outside 0..100 is clamped (with a warning)."""

    progress: float
    type: str | None = "progress"

    def format(self) -> float:
        if not PROGRESS_MIN <= self.progress <= PROGRESS_MAX:
            clamped = max(PROGRESS_MIN, min(self.progress, PROGRESS_MAX))
            logger.warning(
                "ProgressArtifact received an invalid value, Progress: %s%%; interpreting "
                "as %s%% progress",
                self.progress,
                clamped,
            )
            self.progress = clamped
        return self.progress


class ImageArtifact(Artifact):
    """An image shown from a publicly accessible URL."""

    image_url: str
    type: str | None = "image"

    def format(self) -> str:
        return self.image_url
