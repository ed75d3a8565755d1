"""`prefect.client.orchestration` under its Prefect path: `get_client()`.

    from stratoflow.client.orchestration import get_client

    async with get_client() as client:
        run = await client.read_flow_run(flow_run_id)

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, Cancelling())

stratoflow has no REST API: the client's methods call the SDK functions on the current
services, and return stratoflow's own records (docs/sdk.md, "Client").
"""

from __future__ import annotations

from typing import Any, Literal, overload

from stratoflow.client.orchestration._async import StratoClient
from stratoflow.client.orchestration._sync import HelloResponse, SyncStratoClient
from stratoflow.client.orchestration._unsupported import UnsupportedClientMethod

__all__ = [
    "HelloResponse",
    "PrefectClient",
    "StratoClient",
    "SyncPrefectClient",
    "SyncStratoClient",
    "UnsupportedClientMethod",
    "get_client",
]

PrefectClient = StratoClient
SyncPrefectClient = SyncStratoClient


@overload
def get_client(
    httpx_settings: dict[str, Any] | None = None, sync_client: Literal[False] = False
) -> StratoClient: ...


@overload
def get_client(
    httpx_settings: dict[str, Any] | None, sync_client: Literal[True]
) -> SyncStratoClient: ...


@overload
def get_client(*, sync_client: Literal[True]) -> SyncStratoClient: ...


def get_client(
    httpx_settings: dict[str, Any] | None = None, sync_client: bool = False
) -> StratoClient | SyncStratoClient:
    """An async client (`async with get_client() as client:`), or a sync one with
    `sync_client=True` (`with get_client(sync_client=True) as client:`).
    `httpx_settings` is accepted and unused: there is no HTTP connection."""
    return SyncStratoClient() if sync_client else StratoClient()
