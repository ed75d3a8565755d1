"""`strato flow-run execute <id>`: the one way every worker runs a claimed flow run."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from contextlib import ExitStack

from stratoflow.context import use_services
from stratoflow.deployments.bundles import BundleError, BundleRef
from stratoflow.deployments.models import Deployment
from stratoflow.engine.flow_engine import FlowRunEngine
from stratoflow.entrypoints import EntrypointError, load_flow
from stratoflow.exceptions import ObjectNotFound, StratoflowError
from stratoflow.flows import Flow
from stratoflow.models import FlowRun
from stratoflow.orchestration.claims import claim_flow_run
from stratoflow.platform import Platform, get_platform
from stratoflow.states import Failed, State, StateType
from stratoflow.workers.heartbeat import Heartbeat
from stratoflow.workers.messages import FlowRunMessage
from stratoflow.workers.ownership import foreign_run_reason, run_pool_and_queue
from stratoflow.workers.queues import MAX_DELAY_SECONDS

logger = logging.getLogger("stratoflow.workers")


class NotRunnable(StratoflowError):
    """The run is not this worker's to run (final, running elsewhere, or unknown)."""


def execute_flow_run(
    flow_run_id: str,
    platform: Platform | None = None,
    *,
    worker: str | None = None,
    queue_name: str | None = None,
    time_left: Callable[[], float] | None = None,
    read: FlowRun | None = None,
    handoff: str | None = None,
) -> State:
    """Claim the run if it is still Scheduled, then run it to a final state (or hand it
    back for a retry, a sleep, a suspension). With `time_left` (seconds left in the
    worker's time budget), the run hands itself back at a task boundary before the
    budget ends. Raises NotRunnable when there is nothing for this worker to do,
    or when `queue_name` (the SQS queue whose message started this) is not the run's.

    The run is not read again when the caller has: `read` (the worker's own read, e.g.
    its triage's), or `handoff` (what the poller that started this process claimed and
    read: stratoflow.workers.handoff)."""
    platform = platform or get_platform()
    backend = platform.services.backend
    deployment: Deployment | None = None
    if handoff is not None:
        # Imported here: it loads the AWS backend's item codec (and boto3), which the
        # Lambda worker, never handed a run, would otherwise pay for at its cold start.
        from stratoflow.workers.handoff import decode_handoff

        given = decode_handoff(handoff, flow_run_id, platform.backend.results)
        if given is not None:
            read, deployment = given.run, given.deployment
    if read is not None and read.id == flow_run_id:
        run = read
    else:
        try:
            run = backend.read_flow_run(flow_run_id)
        except ObjectNotFound:
            raise NotRunnable(f"No flow run with id {flow_run_id!r}.") from None
    if queue_name is not None:
        foreign = foreign_run_reason(run, prefix=platform.queues.prefix, queue_name=queue_name)
        if foreign is not None:
            logger.warning("Refusing to run flow run %s: %s", flow_run_id, foreign)
            raise NotRunnable(f"Refused: {foreign}")
    state = run.state
    if state is None or state.is_final():
        raise NotRunnable(f"Flow run {flow_run_id} is already {state!r}.")
    if state.type is StateType.SCHEDULED:
        claimed = claim_flow_run(
            backend, flow_run_id, worker=worker, now=platform.services.clock.now(), read=run
        )
        if claimed is None:
            raise NotRunnable(f"Flow run {flow_run_id} was claimed by another worker.")
        run = claimed
    elif state.type is not StateType.PENDING:
        raise NotRunnable(f"Flow run {flow_run_id} is {state!r}, not waiting to run.")
    # The run's code lives in a directory of its own, removed when the run ends.
    with ExitStack() as code:
        loaded = _load(platform, run, code, deployment)
        if isinstance(loaded, State):
            return loaded
        flow, deployment = loaded
        if not deployment.replay and flow.options.replay:
            flow = flow.with_options(replay=False)
        signer = platform.services.result_signer
        services = dataclasses.replace(
            platform.services,
            retry_handoff=lambda r, delay: hand_off_retry(platform, r, delay),
            # A pool's runs sign their pickled results with that pool's key, which only
            # its workers (and operators) can read: docs/security.md.
            result_signer=signer.for_domain(run_pool_and_queue(run)[0]) if signer else None,
            pickle_results=platform.services.pickle_results or deployment.pickle_results,
            time_left=time_left,
            handback_seconds=platform.settings.lambda_worker_handback_seconds,
        )
        heartbeat = Heartbeat(
            backend, run.id, services.clock, interval=platform.settings.heartbeat_seconds
        )
        with heartbeat, use_services(services):
            return FlowRunEngine(flow, services).run_existing(run)


def _load(
    platform: Platform, run: FlowRun, code: ExitStack, deployment: Deployment | None = None
) -> tuple[Flow[..., object], Deployment] | State:
    """The run's flow from its deployment's code bundle, checked out into a fresh directory
    that `code` removes, and the deployment (read, unless given); or the Failed state
    saying why not. The deployment's bundle location and entrypoint are checked
    (BundleStore.check_ref, load_flow's `root`)."""
    backend = platform.services.backend
    try:
        if run.deployment_name is None:
            raise ObjectNotFound(f"Flow run {run.id} has no deployment to load its code from.")
        if deployment is None or deployment.name != run.deployment_name:
            deployment = platform.deployments.get(run.deployment_name)
        bundle = deployment.bundle
        ref = BundleRef(bundle.bucket, bundle.key, bundle.sha256)
        directory = code.enter_context(platform.bundles.checkout(ref))
        return load_flow(deployment.entrypoint, root=directory), deployment
    except (BundleError, EntrypointError, ObjectNotFound) as exc:
        message = f"The flow's code could not be loaded: {exc}"
        logger.error("Flow run %s: %s", run.id, message)
        failed = Failed(message)
        backend.set_flow_run_state(run.id, failed)
        return failed


def hand_off_retry(platform: Platform, run: FlowRun, delay: float) -> bool:
    """Re-enqueue a run that is AwaitingRetry; beyond SQS's 15 minutes the worker that
    receives the message early sends it on with the remaining delay. The send is recorded
    (`enqueued_at`): a retry never sent is sent by the scheduler tick."""
    pool, queue = run_pool_and_queue(run)
    platform.queues.send(
        pool,
        queue,
        FlowRunMessage(
            flow_run_id=run.id, deployment=run.deployment_name, attempt=run.run_count + 1
        ),
        delay_seconds=min(delay, MAX_DELAY_SECONDS),
    )
    platform.services.backend.update_flow_run(run.id, enqueued_at=platform.services.clock.now())
    return True
