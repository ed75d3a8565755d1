"""Variables, artifacts and blocks of the in-process backend: dictionaries under one lock each.

Values are copied in and out, so a caller changing a list it set or got does not change
the stored variable (as with a backend that stores JSON).
"""

from __future__ import annotations

import copy
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from stratoflow.exceptions import ObjectNotFound, RunInputExists
from stratoflow.models import RunInputRecord
from stratoflow.records import (
    ArtifactRecord,
    VariableAlreadyExists,
    VariableRecord,
    compact_json,
)

if TYPE_CHECKING:  # stratoflow.blocks imports the engine's context, which imports this
    from stratoflow.blocks.records import BlockDocument, BlockSecrets


class MemoryVariableStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._variables: dict[str, VariableRecord] = {}

    def read(self, name: str) -> VariableRecord | None:
        with self._lock:
            found = self._variables.get(name)
        return _copied(found) if found is not None else None

    def write(
        self, name: str, value: Any, tags: list[str], *, now: datetime, overwrite: bool
    ) -> VariableRecord:
        with self._lock:
            existing = self._variables.get(name)
            if existing is not None and not overwrite:
                raise VariableAlreadyExists(
                    f"Variable {name!r} already exists. Use `overwrite=True` to update it."
                )
            created = existing.created if existing is not None else now
            record = VariableRecord(
                name=name, value=copy.deepcopy(value), tags=list(tags), created=created, updated=now
            )
            self._variables[name] = record
        return _copied(record)

    def delete(self, name: str) -> bool:
        with self._lock:
            return self._variables.pop(name, None) is not None

    def list_variables(self, *, limit: int | None = None) -> list[VariableRecord]:
        with self._lock:
            records = sorted(self._variables.values(), key=lambda record: record.name)
        chosen = records[:limit] if limit is not None else records
        return [_copied(record) for record in chosen]


def _copied(record: VariableRecord) -> VariableRecord:
    return record.model_copy(update={"value": copy.deepcopy(record.value)})


class MemoryArtifactStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._artifacts: dict[str, ArtifactRecord] = {}

    def create(self, record: ArtifactRecord) -> ArtifactRecord:
        with self._lock:
            self._artifacts[str(record.id)] = record
        return record

    def read(self, artifact_id: str) -> ArtifactRecord:
        with self._lock:
            found = self._artifacts.get(str(artifact_id))
        if found is None:
            raise ObjectNotFound(f"No artifact with id {str(artifact_id)!r}.")
        return found

    def update_progress(
        self, artifact_id: str, progress: float, *, description: str | None, now: datetime
    ) -> ArtifactRecord:
        with self._lock:
            found = self._artifacts.get(str(artifact_id))
            if found is None:
                raise ObjectNotFound(f"No artifact with id {str(artifact_id)!r}.")
            changes: dict[str, Any] = {
                "data": progress,
                "updated": now,
                "body_bytes": len(compact_json(progress).encode()),
            }
            if description is not None:
                changes["description"] = description
            updated = found.model_copy(update=changes)
            self._artifacts[str(artifact_id)] = updated
            return updated

    def _newest_first(self) -> list[ArtifactRecord]:
        with self._lock:
            records = list(self._artifacts.values())
        return sorted(records, key=ArtifactRecord.sort_key, reverse=True)

    def latest(self, key: str | None = None) -> ArtifactRecord | None:
        for record in self._newest_first():
            if key is None or record.key == key:
                return record
        return None

    def versions(self, key: str, *, limit: int | None = None) -> list[ArtifactRecord]:
        return _limited([r for r in self._newest_first() if r.key == key], limit)

    def of_flow_run(self, flow_run_id: str, *, limit: int | None = None) -> list[ArtifactRecord]:
        return _limited([r for r in self._newest_first() if r.flow_run_id == flow_run_id], limit)

    def recent(self, *, limit: int | None = None) -> list[ArtifactRecord]:
        return _limited(self._newest_first(), limit)

    def load_body(self, record: ArtifactRecord) -> ArtifactRecord:
        return record


def _limited(records: list[ArtifactRecord], limit: int | None) -> list[ArtifactRecord]:
    return records[:limit] if limit is not None else records


class MemoryBlockStore:
    """Blocks of this process. Secret values are kept in their own dictionary, as
    `BlockSecrets` (whose repr never shows them), never in a document."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._documents: dict[tuple[str, str], BlockDocument] = {}
        self._secrets: dict[tuple[str, str], BlockSecrets] = {}

    def read(self, block_type_slug: str, name: str) -> BlockDocument | None:
        with self._lock:
            found = self._documents.get((block_type_slug, name))
        return found.model_copy(deep=True) if found is not None else None

    def read_secrets(self, document: BlockDocument, *, pool: str | None) -> BlockSecrets:
        with self._lock:
            found = self._secrets.get((document.block_type_slug, document.name))
        from stratoflow.blocks.records import BlockSecrets, BlockSecretsUnavailable

        if found is None:
            raise BlockSecretsUnavailable(
                f"The block {document.slug!r} has no secret values in this process: save it again."
            )
        return BlockSecrets(copy.deepcopy(found.values()))

    def write(
        self, document: BlockDocument, secrets: BlockSecrets, *, overwrite: bool
    ) -> BlockDocument:
        from stratoflow.blocks.records import (
            BlockAlreadyExists,
            BlockSecrets,
            already_exists_message,
        )

        key = (document.block_type_slug, document.name)
        with self._lock:
            existing = self._documents.get(key)
            if existing is not None and not overwrite:
                raise BlockAlreadyExists(already_exists_message(document.slug))
            if existing is not None:
                document = document.model_copy(
                    update={"id": existing.id, "created": existing.created}
                )
            self._documents[key] = document.model_copy(deep=True)
            self._secrets[key] = BlockSecrets(copy.deepcopy(secrets.values()))
        return document

    def delete(self, block_type_slug: str, name: str) -> bool:
        with self._lock:
            self._secrets.pop((block_type_slug, name), None)
            return self._documents.pop((block_type_slug, name), None) is not None

    def list_blocks(
        self, *, block_type_slug: str | None = None, limit: int | None = None
    ) -> list[BlockDocument]:
        with self._lock:
            found = [
                d
                for key, d in sorted(self._documents.items())
                if block_type_slug is None or key[0] == block_type_slug
            ]
        return found[:limit] if limit is not None else found


class MemoryRunInputStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inputs: dict[tuple[str, str], RunInputRecord] = {}

    def create(self, record: RunInputRecord) -> RunInputRecord:
        with self._lock:
            key = (record.flow_run_id, record.key)
            if key in self._inputs:
                raise RunInputExists(
                    f"Flow run {record.flow_run_id} already has an input {record.key!r}."
                )
            self._inputs[key] = record
        return record

    def read(self, flow_run_id: str, key: str) -> RunInputRecord | None:
        with self._lock:
            return self._inputs.get((flow_run_id, key))

    def list_inputs(
        self, flow_run_id: str, *, prefix: str = "", limit: int | None = None
    ) -> list[RunInputRecord]:
        with self._lock:
            found = [
                r
                for (run_id, key), r in self._inputs.items()
                if run_id == flow_run_id and key.startswith(prefix)
            ]
        found.sort(key=lambda r: r.created)
        return found[:limit] if limit is not None else found

    def delete(self, flow_run_id: str, key: str) -> bool:
        with self._lock:
            return self._inputs.pop((flow_run_id, key), None) is not None
