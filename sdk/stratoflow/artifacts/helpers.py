"""`create_*_artifact` and `update_progress_artifact`, as in Prefect 3.

Each returns the artifact's id (a UUID). The sync forms return coroutines where an event
loop runs outside a run, as Prefect's do; the `a...` forms are always coroutines (they
run the sync body in a worker thread).
"""

from __future__ import annotations

import asyncio
from uuid import UUID

from stratoflow._async_dispatch import async_dispatch
from stratoflow.artifacts.core import (
    Artifact,
    ImageArtifact,
    LinkArtifact,
    MarkdownArtifact,
    ProgressArtifact,
    TableArtifact,
    TableData,
)
from stratoflow.context import get_services
from stratoflow.records import validate_description


def _create(artifact: Artifact) -> UUID:
    return artifact._create().id


async def acreate_link_artifact(
    link: str,
    link_text: str | None = None,
    key: str | None = None,
    description: str | None = None,
) -> UUID:
    artifact = LinkArtifact(key=key, description=description, link=link, link_text=link_text)
    return await asyncio.to_thread(_create, artifact)


@async_dispatch(acreate_link_artifact)
def create_link_artifact(
    link: str,
    link_text: str | None = None,
    key: str | None = None,
    description: str | None = None,
) -> UUID:
    """A markdown link `[link_text](link)`; returns the artifact's id."""
    return _create(LinkArtifact(key=key, description=description, link=link, link_text=link_text))


async def acreate_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> UUID:
    artifact = MarkdownArtifact(key=key, description=description, markdown=markdown)
    return await asyncio.to_thread(_create, artifact)


@async_dispatch(acreate_markdown_artifact)
def create_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> UUID:
    """A markdown document; returns the artifact's id."""
    return _create(MarkdownArtifact(key=key, description=description, markdown=markdown))


async def acreate_table_artifact(
    table: TableData, key: str | None = None, description: str | None = None
) -> UUID:
    artifact = TableArtifact(key=key, description=description, table=table)
    return await asyncio.to_thread(_create, artifact)


@async_dispatch(acreate_table_artifact)
def create_table_artifact(
    table: TableData, key: str | None = None, description: str | None = None
) -> UUID:
    """A table: a list of rows (dicts), a dict of columns, or a list of lists; returns
    the artifact's id."""
    return _create(TableArtifact(key=key, description=description, table=table))


async def acreate_progress_artifact(
    progress: float, key: str | None = None, description: str | None = None
) -> UUID:
    artifact = ProgressArtifact(key=key, description=description, progress=progress)
    return await asyncio.to_thread(_create, artifact)


@async_dispatch(acreate_progress_artifact)
def create_progress_artifact(
    progress: float, key: str | None = None, description: str | None = None
) -> UUID:
    """Progress in percent (0 to 100), updatable with update_progress_artifact; returns
    the artifact's id."""
    return _create(ProgressArtifact(key=key, description=description, progress=progress))


def _update_progress(
    artifact_id: UUID | str, progress: float, description: str | None
) -> UUID | str:
    value = ProgressArtifact(progress=progress).format()
    services = get_services()
    services.backend.artifacts.update_progress(
        str(artifact_id),
        value,
        description=validate_description(description) or None,
        now=services.clock.now(),
    )
    return artifact_id


async def aupdate_progress_artifact(
    artifact_id: UUID | str, progress: float, description: str | None = None
) -> UUID | str:
    return await asyncio.to_thread(_update_progress, artifact_id, progress, description)


@async_dispatch(aupdate_progress_artifact)
def update_progress_artifact(
    artifact_id: UUID | str, progress: float, description: str | None = None
) -> UUID | str:
    """Set a progress artifact's progress (and its description, when given); returns
    `artifact_id`. Raises ObjectNotFound for an unknown id."""
    return _update_progress(artifact_id, progress, description)


async def acreate_image_artifact(
    image_url: str, key: str | None = None, description: str | None = None
) -> UUID:
    artifact = ImageArtifact(key=key, description=description, image_url=image_url)
    return await asyncio.to_thread(_create, artifact)


@async_dispatch(acreate_image_artifact)
def create_image_artifact(
    image_url: str, key: str | None = None, description: str | None = None
) -> UUID:
    """An image shown from a publicly accessible URL; returns the artifact's id."""
    return _create(ImageArtifact(key=key, description=description, image_url=image_url))
