"""The AWS resource model, declared once (DESIGN §2).

The CDK app, local provisioning of the emulator (`provision`) and the tests all read
this module: table, key schema, indexes, TTL attribute, stream, bucket layout, queue
naming and log group names. Item keys are built here too, so no other module spells
`FLOWRUN#...` by hand.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from stratoflow.settings import Settings, env_var

if TYPE_CHECKING:
    import boto3

# Table
PARTITION_KEY = "pk"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "expires_at"
STREAM_VIEW_TYPE = "NEW_AND_OLD_IMAGES"
META = "META"


@dataclass(frozen=True)
class IndexSpec:
    name: str
    partition_key: str
    sort_key: str


BY_DEPLOYMENT = IndexSpec("by_deployment", "gsi1pk", "gsi1sk")
"""Flow runs of a deployment by creation time (sparse: runs with a deployment)."""
BY_STATE = IndexSpec("by_state", "gsi2pk", "gsi2sk")
"""Flow runs by state type and state time, for late, zombie and stuck-run sweeps."""
BY_TIME = IndexSpec("by_time", "gsi3pk", "gsi3sk")
"""Flow runs (and later events) by day and time: `FLOWRUNS#2026-11-21` / `<iso>#<id>`."""


@dataclass(frozen=True)
class TableSpec:
    name: str
    partition_key: str = PARTITION_KEY
    sort_key: str = SORT_KEY
    indexes: tuple[IndexSpec, ...] = (BY_DEPLOYMENT, BY_STATE, BY_TIME)
    ttl_attribute: str = TTL_ATTRIBUTE
    stream_view_type: str = STREAM_VIEW_TYPE
    billing_mode: str = "PAY_PER_REQUEST"

    @property
    def string_attributes(self) -> tuple[str, ...]:
        names = [self.partition_key, self.sort_key]
        for index in self.indexes:
            names += [index.partition_key, index.sort_key]
        return tuple(names)


# Item keys
def flow_run_key(flow_run_id: str) -> dict[str, str]:
    return {PARTITION_KEY: f"FLOWRUN#{flow_run_id}", SORT_KEY: META}


def task_run_key(flow_run_id: str | None, task_run_id: str) -> dict[str, str]:
    """Task runs sit under their flow run, so one Query reads a whole run."""
    if flow_run_id is None:
        return {PARTITION_KEY: f"TASKRUN#{task_run_id}", SORT_KEY: META}
    return {PARTITION_KEY: f"FLOWRUN#{flow_run_id}", SORT_KEY: f"TASKRUN#{task_run_id}"}


FLOW_RUN_HEARTBEAT = "HEARTBEAT"


def flow_run_heartbeat_key(flow_run_id: str) -> dict[str, str]:
    """A running flow run's last heartbeat: an item of its own beside the run's, on no
    index, so that a beat costs one write unit instead of rewriting the run's item and
    its three index entries (stratoflow.workers.heartbeat)."""
    return {PARTITION_KEY: f"FLOWRUN#{flow_run_id}", SORT_KEY: FLOW_RUN_HEARTBEAT}


TASK_RUN_SORT_PREFIX = "TASKRUN#"
RUN_INPUT_SORT_PREFIX = "INPUT#"
EVENT_WAITER_PREFIX = "WAITER#"


def event_waiter_key(event_name: str, flow_run_id: str, key: str) -> dict[str, str]:
    """A flow run waiting for an event (`stratoflow.wait_for_event`), under the event's name
    so that the stream handler finds the waiters of an event with one Query."""
    return {PARTITION_KEY: f"{EVENT_WAITER_PREFIX}{event_name}", SORT_KEY: f"{flow_run_id}#{key}"}


def run_input_key(flow_run_id: str, key: str) -> dict[str, str]:
    """A flow run's input (`stratoflow.input`), in the run's partition."""
    return {PARTITION_KEY: f"FLOWRUN#{flow_run_id}", SORT_KEY: f"{RUN_INPUT_SORT_PREFIX}{key}"}


TASK_RUN_PARAMETERS = "PARAMETERS"


def task_run_parameters_key(task_run_id: str) -> dict[str, str]:
    """The parameters of a background task run (`my_task.delay(...)`), beside its
    `TASKRUN#<id>` / `META` item (stratoflow.background)."""
    return {PARTITION_KEY: f"TASKRUN#{task_run_id}", SORT_KEY: TASK_RUN_PARAMETERS}


TASK_RUNS_DUE_PARTITION = "TASKRUNSDUE"
"""`by_state` partition of the background task runs the crash sweep must look at (held by
a worker, or a retry waiting for its message); sort key `<sweep_due, UTC>#<task run id>`.
A final run leaves it, so a tick reads only what is due (stratoflow.background.sweep)."""


def cache_key(key: str) -> dict[str, str]:
    return {PARTITION_KEY: f"CACHE#{key}", SORT_KEY: META}


def concurrency_key(name: str) -> dict[str, str]:
    """A limit's usage: the leases and rate counter that holders (workers) write."""
    return {PARTITION_KEY: f"CONCURRENCY#{name}", SORT_KEY: META}


def concurrency_limit_key(name: str) -> dict[str, str]:
    """A limit's definition (slots, active, decay), written by operators only: its
    partition is outside the worker roles' `CONCURRENCY#*` (docs/security.md)."""
    return {PARTITION_KEY: f"CONCURRENCYLIMIT#{name}", SORT_KEY: META}


def deployment_key(name: str) -> dict[str, str]:
    return {PARTITION_KEY: f"DEPLOYMENT#{name}", SORT_KEY: META}


def schedule_marks_key(deployment_name: str) -> dict[str, str]:
    """How far the scheduler has made each schedule's runs (stratoflow.deployments.
    schedule_marks): written by the scheduler only, outside every worker's partitions."""
    return {PARTITION_KEY: f"SCHEDULEMARKS#{deployment_name}", SORT_KEY: META}


SCHEDULER_CURSOR_KEY = {PARTITION_KEY: "SCHEDULER", SORT_KEY: "CURSOR"}
"""Where a tick that ran out of time left off (the next one resumes there)."""


def work_pool_key(name: str) -> dict[str, str]:
    return {PARTITION_KEY: f"WORKPOOL#{name}", SORT_KEY: META}


def worker_key(pool: str, name: str) -> dict[str, str]:
    return {PARTITION_KEY: f"WORKER#{pool}", SORT_KEY: name}


UI_SESSION_PREFIX = "UISESSION#"


def ui_session_key(session_id: str) -> dict[str, str]:
    """A web UI session (stratoflow.ui.sessions), keyed by the SHA-256 of its cookie value:
    the table never holds a usable session id. No worker role may reach `UISESSION#*`
    (infra/permissions.py, docs/security.md)."""
    digest = hashlib.sha256(session_id.encode()).hexdigest()
    return {PARTITION_KEY: f"{UI_SESSION_PREFIX}{digest}", SORT_KEY: META}


def ui_sign_in_parameter_name(queue_prefix: str) -> str:
    """The SSM parameter holding the web UI's sign-in settings in a stack (a JSON
    `stratoflow.ui.sign_in_settings.SignInParameter`). The stack writes it and gives the
    API function its name, not its value (docs/ui.md: a dependency cycle)."""
    return f"/{queue_prefix}/ui/sign-in"


UI_OPERATORS_GROUP = Settings.model_fields["ui_operators_group"].default
"""The Cognito group whose members get operator sessions (the stack creates it)."""
UI_VIEWERS_GROUP = "viewers"
"""The Cognito group whose members get viewer sessions; in a stack, a user in neither
group cannot sign in to the UI."""


def automation_partition(automation_id: str) -> str:
    return f"AUTOMATION#{automation_id}"


def automation_key(automation_id: str) -> dict[str, str]:
    """An automation's definition and status (its buckets and firings share the partition)."""
    return {PARTITION_KEY: automation_partition(automation_id), SORT_KEY: META}


def automation_name_key(name: str) -> dict[str, str]:
    """Claims an automation name (written with the automation, in one transaction)."""
    return {PARTITION_KEY: f"AUTOMATIONNAME#{name}", SORT_KEY: META}


AUTOMATION_BUCKET_PREFIX = "BUCKET#"
AUTOMATION_FIRING_PREFIX = "FIRED#"


def automation_due_partition(automation_id: str) -> str:
    """`by_state` partition of an automation's buckets that need the scheduler tick (an
    open Proactive window, or a firing to settle); sort key `<due, UTC>#<bucket key>`.
    Idle buckets leave the index, so a tick reads only what is due."""
    return f"AUTOMATIONDUE#{automation_id}"


def automation_bucket_key(automation_id: str, bucket: str) -> dict[str, str]:
    """The counting state of one trigger for one `for_each` value (TTL)."""
    return {
        PARTITION_KEY: automation_partition(automation_id),
        SORT_KEY: f"{AUTOMATION_BUCKET_PREFIX}{bucket}",
    }


def automation_firing_key(automation_id: str, firing_id: str) -> dict[str, str]:
    """One firing, `<bucket>#<window start>[#resolved]`: its conditional put makes a
    window fire once (TTL)."""
    return {
        PARTITION_KEY: automation_partition(automation_id),
        SORT_KEY: f"{AUTOMATION_FIRING_PREFIX}{firing_id}",
    }


DEPLOYMENTS_PARTITION = "DEPLOYMENTS"
"""`by_time` partition listing every deployment (sort key: its name)."""
WORK_POOLS_PARTITION = "WORKPOOLS"
AUTOMATIONS_PARTITION = "AUTOMATIONS"
"""`by_time` partition listing every automation (sort key: its name)."""
WORKERS_PARTITION = "WORKERS"
"""`by_time` partition listing live workers (sort key: `<pool>#<name>`)."""


def flow_runs_day_partition(day_iso: str) -> str:
    return f"FLOWRUNS#{day_iso}"


EVENT_PARTITION_PREFIX = "EVENT#"


def event_key(event_id: str) -> dict[str, str]:
    """An event (`stratoflow.events`): emitted by user code or derived from the stream."""
    return {PARTITION_KEY: f"{EVENT_PARTITION_PREFIX}{event_id}", SORT_KEY: META}


def events_day_partition(day: date | str) -> str:
    """`by_time` partition of the events that occurred on one UTC day (sort key:
    `<occurred, ISO UTC>#<event id>`)."""
    return f"EVENTS#{day.isoformat() if isinstance(day, date) else day}"


def state_partition(state_type: str) -> str:
    """`by_state` partition of the final runs of one state type (sort key: the time of
    that state, backends/aws/items.state_sort_time)."""
    return f"STATE#{state_type}"


ACTIVE_RUNS_PARTITION = "STATE#ACTIVE"
"""`by_state` partition of every flow run that is not final (sort key: its creation time,
which no transition changes: backends/aws/items.state_index_keys). No state type is
called ACTIVE. Runs written before were in `STATE#<type>` partitions whatever their
state; readers still look there (flow_run_lists.py)."""


def deployment_partition(deployment_name: str) -> str:
    return f"DEPLOYMENT#{deployment_name}"


# Buckets
RESULTS_PREFIX = "results/"
"""Results: `results/<flow_run_id>/<task_run_id or 'flow'>` or a `result_storage_key`."""
CODE_PREFIX = "bundles/"
"""Code bundles: `bundles/<sha256>.zip`, content-addressed."""


# Logs
def log_stream_name(flow_run_id: str | None, task_run_id: str | None = None) -> str:
    """One stream per flow run; a task run outside any flow gets its own."""
    if flow_run_id is not None:
        return f"flow-run/{flow_run_id}"
    if task_run_id is None:
        raise ValueError("A log stream needs a flow run id or a task run id")
    return f"task-run/{task_run_id}"


LOG_RETENTION_DAYS = 30


# Result signing keys
OPERATORS_SIGNING_DOMAIN = "_operators"
"""Whose key signs the pickled results of runs no worker ran (an operator's local run
with the AWS backend, `strato flow-run execute` by hand). Pool names cannot start with
`_`, so it is never a pool's."""


TASKS_SIGNING_DOMAIN = "_tasks"
"""Whose key signs background task runs' pickled parameters and results: the callers of
`.delay` that may read it (operators) and the task workers. Never a pool's name."""


def result_key_parameter_name(prefix: str, domain: str) -> str:
    """The SSM Parameter Store SecureString parameter (standard tier) holding the key that
    signs one signing domain's pickled results (`stratoflow.result_signing`); the stack
    grants each worker principal `ssm:GetParameter` on its own pools' only. A name with a
    `/` must start with one (Parameter Store's rule for hierarchies)."""
    return f"/{prefix}/result-keys/{domain}"


def result_key_secret_name(prefix: str, domain: str) -> str:
    """The Secrets Manager secret that held a domain's key before the keys moved to
    Parameter Store (`result_key_parameter_name`): read when the parameter cannot be, so
    an installation whose stack is not upgraded yet keeps working, and copied into the
    parameter when it is created, so results signed before the upgrade still verify."""
    return f"{prefix}/result-keys/{domain}"


# Queues
DEFAULT_WORK_POOL = "default"
DEFAULT_WORK_QUEUE = "default"
MAX_RECEIVE_COUNT = 5
"""Deliveries of one message before SQS moves it to the work queue's DLQ."""
QUEUE_RETENTION_SECONDS = 14 * 24 * 3600
"""Message retention of work queues and their DLQs: SQS's longest. A run's message kept
this long and never received is gone; the sweep sends a new one (`sweeps.py`)."""


def work_queue_name(prefix: str, pool: str, queue: str) -> str:
    return f"{prefix}-{pool}-{queue}"


def dead_letter_queue_name(prefix: str, pool: str, queue: str) -> str:
    return dead_letter_queue_of(work_queue_name(prefix, pool, queue))


def task_queue_name(prefix: str) -> str:
    """The installation's one queue of background task runs (`my_task.delay(...)`); the
    task key travels in the message. No work queue has this name: theirs have two dashes."""
    return f"{prefix}-tasks"


def dead_letter_queue_of(queue_name: str) -> str:
    """The DLQ of the SQS queue called `queue_name`."""
    return f"{queue_name}-dlq"


@dataclass(frozen=True)
class ResourceNames:
    """The concrete names of one installation."""

    table: str
    results_bucket: str
    code_bucket: str
    runs_log_group: str
    queue_prefix: str
    work_queues: tuple[tuple[str, str], ...] = field(
        default=((DEFAULT_WORK_POOL, DEFAULT_WORK_QUEUE),)
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> ResourceNames:
        return cls(
            table=settings.table_name,
            results_bucket=settings.results_bucket,
            code_bucket=settings.code_bucket,
            runs_log_group=settings.runs_log_group,
            queue_prefix=settings.queue_prefix,
        )

    @property
    def table_spec(self) -> TableSpec:
        return TableSpec(name=self.table)


# Stack outputs
STACK_OUTPUTS: dict[str, str] = {
    "TableName": env_var("table_name"),
    "ResultsBucket": env_var("results_bucket"),
    "CodeBucket": env_var("code_bucket"),
    "RunsLogGroup": env_var("runs_log_group"),
    "QueuePrefix": env_var("queue_prefix"),
    "Region": env_var("region"),
}
"""The outputs of the CDK stack (`infra/`) that configure the CLI and workers, each with
the environment variable it sets: `strato config from-stack STACK` reads them. The stack
has informational outputs too (`NotificationsTopicArn`, `OnPremWorkerPolicyArn<Pool>`, ...)."""
UI_URL_VARIABLE = "STRATOFLOW_UI_URL"
"""Where the web UI is: `strato dev` exports its local login link, `strato config
from-stack` the stack's CloudFront URL."""
UI_URL_OUTPUT = "UiUrl"
OPTIONAL_STACK_OUTPUTS: dict[str, str] = {UI_URL_OUTPUT: UI_URL_VARIABLE}
"""Outputs only some stacks have (the web UI's URL: not with `-c ui=false`), each with the
variable `strato config from-stack` exports when the stack has it."""


def provision(
    session: boto3.Session, names: ResourceNames | None = None, *, endpoint_url: str | None = None
) -> ResourceNames:
    """Create every resource of the model that does not exist yet (idempotent)."""
    from stratoflow.provisioning import provision_all
    from stratoflow.settings import get_settings

    resolved = names or ResourceNames.from_settings(get_settings())
    provision_all(session, resolved, endpoint_url=endpoint_url)
    return resolved


# Variables and artifacts (stratoflow.variables, stratoflow.artifacts)
def variable_key(name: str) -> dict[str, str]:
    """A variable: its JSON value, tags and times. Workers may write it (flows set
    variables), so nothing of the control plane reads it."""
    return {PARTITION_KEY: f"VARIABLE#{name}", SORT_KEY: META}


VARIABLES_PARTITION = "VARIABLES"
"""`by_time` partition listing every variable (sort key: its name)."""


def artifact_key(artifact_id: str) -> dict[str, str]:
    """One artifact version (flows create them: workers may write it)."""
    return {PARTITION_KEY: f"ARTIFACT#{artifact_id}", SORT_KEY: META}


ARTIFACT_BY_KEY = BY_DEPLOYMENT
"""Versions of a keyed artifact: `ARTIFACTKEY#<key>` / `<created, ISO UTC>#<id>`."""
ARTIFACT_BY_FLOW_RUN = BY_STATE
"""Artifacts of a flow run (and its task runs): `ARTIFACTRUN#<run id>` / `<created>#<id>`."""
ARTIFACT_BY_DAY = BY_TIME
"""Every artifact by the UTC day it was created: `ARTIFACTS#<day>` / `<created>#<id>`."""


def artifact_key_partition(key: str) -> str:
    return f"ARTIFACTKEY#{key}"


def artifact_flow_run_partition(flow_run_id: str) -> str:
    return f"ARTIFACTRUN#{flow_run_id}"


def artifacts_day_partition(day: date | str) -> str:
    return f"ARTIFACTS#{day.isoformat() if isinstance(day, date) else day}"


ARTIFACTS_PREFIX = "artifacts/"
"""Artifact bodies too large for their item, under `RESULTS_PREFIX` (where worker roles
may write): `results/artifacts/<artifact id>.json`, named by the item's own key."""


def artifact_body_key(artifact_id: str) -> str:
    """The S3 key (in the results bucket) of a large artifact body."""
    return f"{RESULTS_PREFIX}{ARTIFACTS_PREFIX}{artifact_id}.json"


# Blocks (stratoflow.blocks): configuration operators save and flows load
def block_key(block_type_slug: str, name: str) -> dict[str, str]:
    """A block document's non-secret fields. Only operators write it: the partition is
    outside every worker role's writable partitions (docs/blocks.md)."""
    return {PARTITION_KEY: f"BLOCK#{block_type_slug}/{name}", SORT_KEY: META}


BLOCKS_PARTITION = "BLOCKS"
"""`by_time` partition listing every block document (sort key: `<type slug>/<name>`)."""
BLOCK_SECRETS_ALL_POOLS = "_all"
"""The scope of a block's secret that every worker principal may read (pool names cannot
start with `_`, so it is never a pool's)."""


def block_secret_name(prefix: str, scope: str, block_type_slug: str, name: str) -> str:
    """The Secrets Manager secret holding a block's secret fields, for one scope: `_all`
    (every pool's workers may read it) or one work pool (only that pool's workers). The
    stack grants each worker principal `<prefix>/blocks/_all/*` and its own pools'."""
    return f"{block_secrets_prefix(prefix, scope)}{block_type_slug}/{name}"


def block_secrets_prefix(prefix: str, scope: str) -> str:
    return f"{prefix}/blocks/{scope}/"
