"""`Asset`, `AssetProperties` and `add_asset_metadata` under Prefect's module path
(`prefect.assets.core`). They are defined in `stratoflow._assets`, which task options
and `stratoflow.tasks` import without loading `@materialize`."""

from __future__ import annotations

from stratoflow._assets import (
    MAX_ASSET_DESCRIPTION_LENGTH,
    MAX_ASSET_KEY_LENGTH,
    Asset,
    AssetProperties,
    add_asset_metadata,
)

__all__ = [
    "MAX_ASSET_DESCRIPTION_LENGTH",
    "MAX_ASSET_KEY_LENGTH",
    "Asset",
    "AssetProperties",
    "add_asset_metadata",
]
