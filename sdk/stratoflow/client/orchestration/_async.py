"""`StratoClient`: Prefect's async `PrefectClient`, made from `SyncStratoClient`.

Every public method of the sync client is here as a coroutine that runs it in a worker
thread (`asyncio.to_thread`, which carries the context: `use_services` and the current
run), so that the event loop keeps running while boto3 waits on AWS.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn, Self

from stratoflow.client.orchestration._sync import SyncStratoClient
from stratoflow.client.orchestration._unsupported import unsupported_method

_ENTER_WITH_ASYNC = (
    "The async client is entered with `async with get_client() as client:`; for "
    "`with`, use get_client(sync_client=True)."
)


class StratoClient:
    """An asynchronous client: `async with get_client() as client: ...`; each method of
    `SyncStratoClient` is awaited (`await client.read_flow_run(flow_run_id)`)."""

    def __init__(self) -> None:
        self._sync = SyncStratoClient()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    def __enter__(self) -> NoReturn:
        raise RuntimeError(_ENTER_WITH_ASYNC)

    def __exit__(self, *exc_info: object) -> NoReturn:
        raise RuntimeError(_ENTER_WITH_ASYNC)

    if TYPE_CHECKING:
        # The methods are added below, from the sync client's: typed loosely here.
        def __getattr__(self, name: str) -> Callable[..., Coroutine[Any, Any, Any]]: ...

    else:

        def __getattr__(self, name: str) -> object:
            if name.startswith("_"):
                raise AttributeError(name)
            raise unsupported_method(type(self).__name__, name)


def _as_coroutine(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    async def call(self: StratoClient, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self._sync, name), *args, **kwargs)

    return call


for _name, _method in inspect.getmembers(SyncStratoClient, inspect.isfunction):
    if not _name.startswith("_"):
        setattr(StratoClient, _name, _as_coroutine(_name, _method))
