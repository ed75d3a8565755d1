"""boto3 clients configured once: endpoint, region and botocore's retry mode.

No AWS call in stratoflow retries by hand: throttling and 5xx errors are retried by
botocore (`standard` or `adaptive` mode, STRATOFLOW_AWS_RETRY_MODE).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import boto3
import botocore.session
from botocore.config import Config
from botocore.loaders import Loader

from stratoflow.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True)
class AwsConfig:
    region: str = "us-east-1"
    endpoint_url: str | None = None
    retry_mode: Literal["standard", "adaptive", "legacy"] = "standard"
    max_attempts: int = 8

    @classmethod
    def from_settings(cls, settings: Settings) -> AwsConfig:
        return cls(
            region=settings.region,
            endpoint_url=settings.endpoint_url,
            retry_mode=settings.aws_retry_mode,
            max_attempts=settings.aws_max_attempts,
        )

    def botocore_config(self) -> Config:
        return Config(
            region_name=self.region,
            # total_max_attempts counts the first attempt too (max_attempts would not).
            retries={"mode": self.retry_mode, "total_max_attempts": self.max_attempts},
            max_pool_connections=50,
        )

    def logs_config(self) -> Config:
        """Log shipping gives up sooner: an unreachable CloudWatch must not hold a run's
        end for minutes (lines stay buffered and go out at the next flush)."""
        return Config(
            region_name=self.region,
            retries={"mode": self.retry_mode, "total_max_attempts": min(self.max_attempts, 3)},
            connect_timeout=3,
            read_timeout=10,
        )


_preloaded: Loader | None = None
"""botocore's parsed models (services, endpoints, retries), shared by the sessions of
this process: set in the poller's fork server, inherited by each process it forks."""


def preload_service_models(services: Iterable[str]) -> None:
    """Parse botocore's models of `services` once, in a process that forks: each child's
    sessions then start from them instead of reading and parsing the JSON again (about
    0.1 s of CPU a process). What is shared is parsed data only: the clients made here
    are dropped, and a child makes its own sessions, credentials and connections."""
    global _preloaded
    core = botocore.session.get_session()
    session = boto3.Session(botocore_session=core, region_name="us-east-1")
    for service in services:
        # Explicit dummy credentials: no lookup (an instance metadata call would open a
        # connection); creating a client sends nothing.
        session.client(  # type: ignore[call-overload]
            service, aws_access_key_id="preload", aws_secret_access_key="preload"
        )
    _preloaded = core.get_component("data_loader")


def new_session(region: str) -> boto3.Session:
    """A boto3 session of its own (configuration and credentials read now), starting
    from the preloaded models when this process has them."""
    core = botocore.session.get_session()
    if _preloaded is not None:
        core.register_component("data_loader", _preloaded)
    return boto3.Session(botocore_session=core, region_name=region)


class AwsClients:
    """Creates (and caches) the clients stratoflow uses from one boto3 session."""

    def __init__(
        self, session: boto3.Session | None = None, config: AwsConfig | None = None
    ) -> None:
        self.config = config or AwsConfig()
        self.session = session or new_session(self.config.region)
        self._clients: dict[str, Any] = {}

    def _client(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            config = (
                self.config.logs_config() if service == "logs" else self.config.botocore_config()
            )
            client = self.session.client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.config.endpoint_url,
                config=config,
            )
            self._clients[service] = client
        return client

    @property
    def dynamodb(self) -> DynamoDBClient:
        return self._client("dynamodb")  # type: ignore[no-any-return]

    @property
    def s3(self) -> S3Client:
        return self._client("s3")  # type: ignore[no-any-return]

    @property
    def logs(self) -> CloudWatchLogsClient:
        return self._client("logs")  # type: ignore[no-any-return]

    @property
    def sqs(self) -> SQSClient:
        return self._client("sqs")  # type: ignore[no-any-return]

    @property
    def secretsmanager(self) -> Any:
        """Secrets Manager: automations' webhook secrets, blocks' secrets and the
        result-signing keys of earlier versions (no type stubs installed)."""
        return self._client("secretsmanager")

    @property
    def ssm(self) -> Any:
        """SSM Parameter Store: the keys that sign pickled results and the web UI's sign-in
        settings (no type stubs installed)."""
        return self._client("ssm")

    @property
    def ecs(self) -> Any:
        """The ECS client (the ECS dispatcher's; no type stubs are installed for it)."""
        return self._client("ecs")

    @property
    def dynamodbstreams(self) -> Any:
        """The table's stream (read by the local runtime the way Lambda's event source
        mapping reads it in AWS)."""
        return self._client("dynamodbstreams")
