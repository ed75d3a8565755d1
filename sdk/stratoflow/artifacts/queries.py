"""Reading artifacts back (what `strato artifact ls|inspect` shows)."""

from __future__ import annotations

import uuid

from stratoflow.context import get_services
from stratoflow.exceptions import ObjectNotFound
from stratoflow.records import (
    ArtifactBodyUnavailable,
    ArtifactRecord,
    InvalidArtifactError,
    validate_artifact_key,
)

DEFAULT_LIMIT = 100


def _as_id(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def list_artifacts(
    *,
    key: str | None = None,
    flow_run_id: str | None = None,
    all_versions: bool = False,
    limit: int | None = DEFAULT_LIMIT,
) -> list[ArtifactRecord]:
    """Newest first: the versions of `key`; the artifacts of a flow run; else the latest
    version of each key (every artifact, keyed or not, with `all_versions`). Bodies kept
    in the results bucket are not read (`body_loaded` is False)."""
    store = get_services().backend.artifacts
    if key is not None:
        validate_artifact_key(key)
        found = store.versions(key, limit=limit)
        if flow_run_id is not None:
            found = [record for record in found if record.flow_run_id == flow_run_id]
        return found
    if flow_run_id is not None:
        return store.of_flow_run(flow_run_id, limit=limit)
    if all_versions:
        return store.recent(limit=limit)
    latest: dict[str, ArtifactRecord] = {}
    for record in store.recent(limit=None):
        if record.key is not None and record.key not in latest:
            latest[record.key] = record
            if limit is not None and len(latest) >= limit:
                break
    return list(latest.values())


def read_artifact(key_or_id: str, *, limit: int | None = 10) -> list[ArtifactRecord]:
    """The artifact with this id, or the versions of this key newest first (bodies not
    read: see `load_body`). Raises ObjectNotFound when there is none."""
    artifact_id = _as_id(key_or_id)
    store = get_services().backend.artifacts
    if artifact_id is not None:
        return [store.read(artifact_id)]
    try:
        validate_artifact_key(key_or_id)
    except InvalidArtifactError as exc:
        raise ObjectNotFound(
            f"No artifact {key_or_id!r}: it is neither an id nor a key ({exc})"
        ) from None
    found = store.versions(key_or_id, limit=limit)
    if not found:
        raise ObjectNotFound(
            f"No artifact with key or id {key_or_id!r}; `strato artifact ls` lists them."
        )
    return found


def load_body(record: ArtifactRecord) -> tuple[ArtifactRecord, str | None]:
    """The record with its body, or unchanged with the reason it cannot be shown."""
    try:
        return get_services().backend.artifacts.load_body(record), None
    except ArtifactBodyUnavailable as exc:
        return record, str(exc)
