"""Assets and the asset context of a task run (Prefect 3's `prefect.assets.core` and
`prefect.context.AssetContext`), with no dependency on the engine: task options and
`stratoflow.tasks` import them, and `stratoflow.assets` re-exports them.

An asset is identified by its key, a URI (`s3://bucket/orders.parquet`,
`postgres://db/users`). In events its key is the resource id as it is, and its
properties are labels (`stratoflow.resource.name`, `stratoflow.asset.description`,
`stratoflow.asset.url`, `stratoflow.asset.owners`), as Prefect labels them with `prefect.`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticSerializationError, to_jsonable_python

from stratoflow.events.label_names import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE

MAX_ASSET_KEY_LENGTH = 512
MAX_ASSET_DESCRIPTION_LENGTH = 2500
RESTRICTED_ASSET_CHARACTERS = (
    *("\n", "\r", "\t", "\0", " ", "#", "?", "&", "%", '"', "'", "<", ">"),
    *("[", "]", "{", "}", "|", "\\", "^", "`"),
)
_URI = re.compile(r"^[a-z0-9]+://")


def validate_asset_key(value: str) -> str:
    """`value` when it is a valid asset key (Prefect's rules), else ValueError."""
    for char in RESTRICTED_ASSET_CHARACTERS:
        if char in value:
            raise ValueError(f"Asset key cannot contain {char!r}")
    if len(value) > MAX_ASSET_KEY_LENGTH:
        raise ValueError(f"Asset key cannot exceed {MAX_ASSET_KEY_LENGTH} characters")
    if not _URI.match(value):
        raise ValueError("Key must be a valid URI, e.g. storage://bucket/folder/asset.csv")
    return value


ValidAssetKey = Annotated[str, AfterValidator(validate_asset_key)]


class AssetProperties(BaseModel):
    """Metadata properties to configure on an Asset."""

    model_config = ConfigDict(frozen=True)

    name: str | None = Field(default=None, description="Human readable name of the Asset.")
    url: str | None = Field(default=None, description="Visitable url to view the Asset.")
    description: str | None = Field(
        default=None,
        description="Description of the Asset.",
        max_length=MAX_ASSET_DESCRIPTION_LENGTH,
    )
    owners: list[str] | None = Field(default=None, description="Owners of the Asset.")


class Asset(BaseModel):
    """Assets are objects that represent materialized data, providing a way to track
    lineage and dependencies."""

    model_config = ConfigDict(frozen=True)

    key: ValidAssetKey
    properties: AssetProperties | None = Field(
        default=None,
        description="Properties of the asset. Setting this will overwrite properties of a "
        "known asset.",
    )

    def __repr__(self) -> str:
        return f"Asset(key={self.key!r})"

    def __hash__(self) -> int:
        return hash(self.key)

    def add_metadata(self, metadata: dict[str, Any]) -> None:
        """Add `metadata` to this asset's materialization event (from inside the
        @materialize task that materializes it)."""
        add_asset_metadata(self, metadata)


def as_assets(values: Iterable[str | Asset], what: str) -> tuple[Asset, ...]:
    """Keys and Assets as Assets, without repeats (an Asset and its key are one)."""
    found: list[Asset] = []
    for value in values:
        if not isinstance(value, str | Asset):
            raise TypeError(
                f"{what} takes asset keys (strings such as 's3://bucket/data.csv') or Asset "
                f"objects, got {type(value).__name__}"
            )
        asset = Asset(key=value) if isinstance(value, str) else value
        if asset not in found:
            found.append(asset)
    return tuple(found)


@dataclass
class AssetContext:
    """The assets of one task run: what it materializes (`downstream_assets`), what it
    reads (its `asset_deps`, and the assets upstream task runs passed on to it), and the
    metadata added for its materialization events."""

    direct_asset_dependencies: tuple[Asset, ...] = ()
    downstream_assets: tuple[Asset, ...] = ()
    upstream_assets: tuple[Asset, ...] = ()
    materialized_by: str | None = None
    task_run_id: str | None = None
    materialization_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)

    __var__: ClassVar[ContextVar[AssetContext | None]]

    @classmethod
    def get(cls) -> AssetContext | None:
        """The current task run's asset context, or None outside a task run."""
        return cls.__var__.get()

    def add_asset_metadata(self, asset_key: str, metadata: Mapping[str, Any]) -> None:
        """Merge `metadata` into the payload of `asset_key`'s materialization event."""
        if asset_key not in {asset.key for asset in self.downstream_assets}:
            raise ValueError(
                "Can only add metadata to assets that are arguments to @materialize "
                f"({asset_key!r} is not one of this task's)."
            )
        if not isinstance(metadata, Mapping):
            raise TypeError(f"Asset metadata must be a dict, got {type(metadata).__name__}")
        try:
            # JSON now (datetimes, UUIDs, models as pydantic dumps them), not when the
            # event is written after the run: a mistake shows where it is made.
            jsonable = to_jsonable_python(dict(metadata))
            json.dumps(jsonable)
        except (PydanticSerializationError, TypeError, ValueError) as exc:
            raise TypeError(
                f"Asset metadata must be JSON-serializable (it is the event's payload): {exc}"
            ) from None
        existing = self.materialization_metadata.get(asset_key, {})
        self.materialization_metadata[asset_key] = existing | jsonable

    @staticmethod
    def asset_as_resource(asset: Asset) -> dict[str, str]:
        """The asset as an event's resource: its key, and the properties it has."""
        resource = {RESOURCE_ID: asset.key}
        properties = asset.properties
        if properties is not None:
            if properties.name is not None:
                resource[RESOURCE_NAME] = properties.name
            if properties.description is not None:
                resource["stratoflow.asset.description"] = properties.description
            if properties.url is not None:
                resource["stratoflow.asset.url"] = properties.url
            if properties.owners is not None:
                resource["stratoflow.asset.owners"] = json.dumps(properties.owners)
        return resource

    @staticmethod
    def asset_as_related(asset: Asset) -> dict[str, str]:
        """The asset as a related resource of a materialization (role `asset`)."""
        return {RESOURCE_ID: asset.key, RESOURCE_ROLE: "asset"}

    @staticmethod
    def related_materialized_by(by: str) -> dict[str, str]:
        """The tool that materialized the assets (`@materialize(..., by="dbt")`)."""
        return {RESOURCE_ID: by, RESOURCE_ROLE: "asset-materialized-by"}


AssetContext.__var__ = ContextVar("stratoflow_asset_context", default=None)

NO_ASSETS = AssetContext()
"""The context of a task run that materializes nothing: adding metadata there is the
ValueError Prefect gives, not the RuntimeError of code outside any task run."""


def add_asset_metadata(asset: str | Asset, metadata: dict[str, Any]) -> None:
    """Add `metadata` to the materialization event of `asset` (a key or an Asset), from
    inside the @materialize task that materializes it; calls accumulate."""
    context = AssetContext.get()
    if context is None:
        raise RuntimeError(
            "Unable to call `add_asset_metadata` when not inside of an AssetContext: call it "
            "from the function of a task decorated with @materialize(...)."
        )
    context.add_asset_metadata(asset if isinstance(asset, str) else asset.key, metadata)


__all__ = [
    "MAX_ASSET_DESCRIPTION_LENGTH",
    "MAX_ASSET_KEY_LENGTH",
    "Asset",
    "AssetContext",
    "AssetProperties",
    "add_asset_metadata",
    "as_assets",
    "validate_asset_key",
]
