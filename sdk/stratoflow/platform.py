"""Everything a deployment-aware component needs, built once from settings.

Deployments, the scheduler and the workers run against the AWS backend (or the
emulator): they need SQS, S3 and DynamoDB, not just this process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stratoflow.context import Services, get_services
from stratoflow.exceptions import StratoflowError
from stratoflow.settings import Settings, get_settings

if TYPE_CHECKING:
    from stratoflow.backends.aws.backend import AwsBackend
    from stratoflow.deployments.bundles import BundleStore
    from stratoflow.deployments.schedule_marks import ScheduleMarks
    from stratoflow.deployments.store import DeploymentStore, WorkPoolStore
    from stratoflow.workers.queues import WorkQueues


class BackendNotConfigured(StratoflowError):
    """A deployment feature was used with the in-process backend."""


@dataclass
class Platform:
    settings: Settings
    services: Services
    deployments: DeploymentStore
    work_pools: WorkPoolStore
    queues: WorkQueues
    bundles: BundleStore
    schedule_marks: ScheduleMarks

    @property
    def backend(self) -> AwsBackend:
        from stratoflow.backends.aws.backend import AwsBackend

        backend = self.services.backend
        assert isinstance(backend, AwsBackend)
        return backend


_platform: Platform | None = None
_lock = threading.Lock()


def build_platform(services: Services, settings: Settings) -> Platform:
    from stratoflow.backends.aws.backend import AwsBackend
    from stratoflow.deployments.bundles import BundleStore
    from stratoflow.deployments.schedule_marks import ScheduleMarks
    from stratoflow.deployments.store import DeploymentStore, WorkPoolStore
    from stratoflow.workers.queues import WorkQueues

    backend = services.backend
    if not isinstance(backend, AwsBackend):
        raise BackendNotConfigured(
            "Deployments, schedules and workers need the AWS backend: set "
            "STRATOFLOW_BACKEND=aws (and STRATOFLOW_ENDPOINT_URL=http://127.0.0.1:<port> "
            "for the local emulator started by `strato dev`)."
        )
    clients = backend.clients
    return Platform(
        settings=settings,
        services=services,
        deployments=DeploymentStore(clients.dynamodb, backend.table),
        work_pools=WorkPoolStore(clients.dynamodb, backend.table),
        queues=WorkQueues(clients.sqs, settings.queue_prefix),
        bundles=BundleStore(
            clients.s3, settings.code_bucket, cache_dir=settings.home.expanduser() / "bundles"
        ),
        schedule_marks=ScheduleMarks(clients.dynamodb, backend.table),
    )


def get_platform() -> Platform:
    """The platform of the current services (built on first use, then kept)."""
    global _platform
    services = get_services()
    if _platform is None or _platform.services is not services:
        with _lock:
            if _platform is None or _platform.services is not services:
                _platform = build_platform(services, get_settings())
    return _platform
