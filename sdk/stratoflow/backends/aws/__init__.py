"""The AWS backend: DynamoDB (runs, states, cache), S3 (results), CloudWatch Logs (logs)."""

from __future__ import annotations

import atexit
from typing import TYPE_CHECKING

from stratoflow.backends.aws.backend import AwsBackend
from stratoflow.backends.aws.cache import DynamoCacheStore
from stratoflow.backends.aws.clients import AwsClients, AwsConfig
from stratoflow.backends.aws.concurrency import DynamoConcurrencyStore
from stratoflow.backends.aws.logs import CloudWatchLogShipper
from stratoflow.backends.aws.results import S3ResultStore
from stratoflow.resources import OPERATORS_SIGNING_DOMAIN, ResourceNames
from stratoflow.result_signing import ResultSigner

if TYPE_CHECKING:
    import boto3

    from stratoflow.clock import Clock
    from stratoflow.context import Services
    from stratoflow.settings import Settings


def build_aws_services(
    settings: Settings,
    *,
    session: boto3.Session | None = None,
    clock: Clock | None = None,
    names: ResourceNames | None = None,
) -> Services:
    """Services backed by the resources of one installation (from settings)."""
    from stratoflow.clock import SystemClock
    from stratoflow.context import Services

    clients = AwsClients(session, AwsConfig.from_settings(settings))
    resolved = names or ResourceNames.from_settings(settings)
    logs = CloudWatchLogShipper(
        clients.logs,
        resolved.runs_log_group,
        flush_seconds=settings.log_flush_seconds,
        max_buffer_lines=settings.log_buffer_max_lines,
    )
    backend = AwsBackend(
        clients, resolved, logs=logs, task_run_flush_seconds=settings.task_run_flush_seconds
    )
    # Write what is still buffered when the interpreter exits (the writers are daemons).
    atexit.register(backend.close)
    return Services(
        backend=backend,
        clock=clock or SystemClock(),
        result_store=backend.result_store,
        cache_store=DynamoCacheStore(clients.dynamodb, resolved.table, backend.results),
        concurrency=DynamoConcurrencyStore(clients.dynamodb, resolved.table),
        persist_results_by_default=True,
        inline_result_max_bytes=settings.inline_result_max_bytes,
        pickle_results=settings.pickle_results,
        result_signer=ResultSigner(backend.result_keys, OPERATORS_SIGNING_DOMAIN),
    )


__all__ = [
    "AwsBackend",
    "AwsClients",
    "AwsConfig",
    "CloudWatchLogShipper",
    "DynamoCacheStore",
    "DynamoConcurrencyStore",
    "S3ResultStore",
    "build_aws_services",
]
