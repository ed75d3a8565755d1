"""The client's variable and artifact methods: `stratoflow.variables` and
`stratoflow.artifacts` (names, values and keys are checked there)."""

from __future__ import annotations

from collections.abc import Iterable

from stratoflow.artifacts.queries import list_artifacts
from stratoflow.client.schemas import sorting
from stratoflow.client.schemas._filtering import pinned
from stratoflow.client.schemas.actions import VariableCreate, VariableUpdate
from stratoflow.client.schemas.filters import (
    ArtifactFilter,
    FlowRunFilter,
    TaskRunFilter,
    UnsupportedFilter,
)
from stratoflow.client.schemas.sorting import ArtifactSort
from stratoflow.exceptions import ObjectNotFound
from stratoflow.records import ArtifactRecord, VariableRecord
from stratoflow.variables import delete_variable, list_variables, read_variable, write_variable

_DEFAULT_LIMIT = 200  # Prefect's server default, as for flow runs


class RecordMethods:
    # Variables

    def create_variable(self, variable: VariableCreate) -> VariableRecord:
        """Raises VariableAlreadyExists (a ValueError) when the name is taken."""
        return write_variable(variable.name, variable.value, variable.tags)

    def read_variable_by_name(self, name: str) -> VariableRecord | None:
        return read_variable(name)

    def read_variables(self, limit: int | None = None) -> list[VariableRecord]:
        """By name."""
        return list_variables(limit=limit)

    def update_variable(self, variable: VariableUpdate) -> None:
        """Change the fields given (`value`, `tags`); raises ObjectNotFound when there
        is no such variable."""
        current = self._stored_variable(variable.name)
        given = variable.model_fields_set
        write_variable(
            variable.name,
            variable.value if "value" in given else current.value,
            variable.tags if "tags" in given else current.tags,
            overwrite=True,
        )

    def delete_variable_by_name(self, name: str) -> None:
        """Raises ObjectNotFound when there is no such variable."""
        if not delete_variable(name):
            raise ObjectNotFound(f"No variable named {name!r}.")

    def _stored_variable(self, name: str) -> VariableRecord:
        found = read_variable(name)
        if found is None:
            raise ObjectNotFound(f"No variable named {name!r}; create_variable creates one.")
        return found

    # Artifacts

    def read_artifacts(
        self,
        *,
        artifact_filter: ArtifactFilter | None = None,
        flow_run_filter: FlowRunFilter | None = None,
        task_run_filter: TaskRunFilter | None = None,
        sort: ArtifactSort | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ArtifactRecord]:
        """Every version the filter matches, newest first unless `sort` says otherwise.
        Bodies kept in the results bucket are not read (`body_loaded` is False;
        `stratoflow.artifacts.queries.load_body` reads one)."""
        if flow_run_filter is not None or task_run_filter is not None:
            raise UnsupportedFilter(
                "read_artifacts selects artifacts by their own fields in stratoflow: use "
                "artifact_filter=ArtifactFilter(flow_run_id={'any_': [flow_run_id]})."
            )
        found = [
            record
            for record in _candidates(artifact_filter)
            if artifact_filter is None or artifact_filter.matches(record)
        ]
        if sort is not None:
            found = sorting.sort(found, sort, ArtifactSort)
        return found[offset : offset + (_DEFAULT_LIMIT if limit is None else limit)]


def _candidates(artifact_filter: ArtifactFilter | None) -> list[ArtifactRecord]:
    """The listing that holds every match: the versions of the keys named, else the
    artifacts of the flow runs named, else every artifact (`list_artifacts`)."""
    keys = pinned(artifact_filter, "key")
    if keys is not None:
        return _newest_first(list_artifacts(key=key, limit=None) for key in keys)
    flow_run_ids = pinned(artifact_filter, "flow_run_id")
    if flow_run_ids is not None:
        return _newest_first(
            list_artifacts(flow_run_id=run_id, limit=None) for run_id in flow_run_ids
        )
    return list_artifacts(all_versions=True, limit=None)


def _newest_first(listings: Iterable[list[ArtifactRecord]]) -> list[ArtifactRecord]:
    merged = [record for listing in listings for record in listing]
    return sorted(merged, key=ArtifactRecord.sort_key, reverse=True)
