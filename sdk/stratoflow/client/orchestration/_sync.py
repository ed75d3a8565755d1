"""`SyncStratoClient`: Prefect's `SyncPrefectClient` as a façade over the SDK.

Each method calls the SDK function that does the work, on the current services
(`stratoflow.context.get_services()`, as the SDK functions themselves): there is no
connection to open, so entering and leaving the client does nothing but mark its use.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Self

from botocore.exceptions import BotoCoreError, ClientError

import stratoflow
from stratoflow import runs
from stratoflow.client.orchestration._automations import AutomationMethods
from stratoflow.client.orchestration._deployments import DeploymentMethods
from stratoflow.client.orchestration._flow_runs import FlowRunMethods
from stratoflow.client.orchestration._limits import LimitMethods
from stratoflow.client.orchestration._records import RecordMethods
from stratoflow.client.orchestration._unsupported import unsupported_method
from stratoflow.exceptions import StratoflowError


@dataclass(frozen=True, slots=True)
class HelloResponse:
    """What `hello()` returns: the part of Prefect's HTTP response callers use."""

    status_code: int = 200

    def json(self) -> str:
        return "👋"


class SyncStratoClient(
    FlowRunMethods, DeploymentMethods, RecordMethods, LimitMethods, AutomationMethods
):
    """A synchronous client: `with get_client(sync_client=True) as client: ...`."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    def __getattr__(self, name: str) -> object:
        # Only for names the class lacks: a Prefect method stratoflow has no counterpart
        # for says what to use instead.
        if name.startswith("_"):
            raise AttributeError(name)
        raise unsupported_method(type(self).__name__, name)

    def hello(self) -> HelloResponse:
        """Read one flow run from the backend: raises when it cannot be reached."""
        runs.read_flow_runs(limit=1)
        return HelloResponse()

    def api_healthcheck(self) -> Exception | None:
        """None when the backend answers `hello()`, else the error it raised."""
        try:
            self.hello()
        except (BotoCoreError, ClientError, StratoflowError, OSError) as exc:
            return exc  # Prefect's contract: the failure is returned, not raised
        return None

    def api_version(self) -> str:
        """stratoflow's version: the SDK is the API."""
        return stratoflow.__version__

    def client_version(self) -> str:
        return stratoflow.__version__
