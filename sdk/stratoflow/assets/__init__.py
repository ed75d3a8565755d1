"""Assets: the data your tasks produce and read, with lineage and events (Prefect 3's
`prefect.assets`; docs/sdk.md, docs/events.md).

    from stratoflow import flow
    from stratoflow.assets import materialize

    @materialize("s3://acme-data/raw/orders.parquet")
    def extract() -> list[dict]: ...

    @materialize("s3://acme-data/clean/orders.parquet", by="pandas")
    def clean(rows: list[dict]) -> None: ...

    @flow
    def orders() -> None:
        clean(extract())   # clean's materialization event relates the raw asset
"""

from __future__ import annotations

from stratoflow.assets.core import Asset, AssetProperties, add_asset_metadata
from stratoflow.assets.materialize import materialize

__all__ = ["Asset", "AssetProperties", "add_asset_metadata", "materialize"]
