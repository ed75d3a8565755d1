"""IAM statements, least privilege: each role gets the statements of what its code calls.

The action lists follow the SDK's calls (boto3 client methods in `stratoflow`):
DynamoDB GetItem/Query/PutItem/UpdateItem/DeleteItem/BatchWriteItem, S3 Get/Put/Head
(404 needs ListBucket), SQS Send/Receive/Delete/ChangeMessageVisibility/GetQueueUrl,
CloudWatch Logs CreateLogStream/PutLogEvents. No role may Scan the table, change its
schema, or read another bucket prefix.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs

from infra.constructs.state_table import StateTable
from stratoflow import resources
from stratoflow.run_ids import pool_tag

TABLE_READ_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
)
TABLE_WRITE_ACTIONS = (
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
)
QUEUE_CONSUME_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
)
QUEUE_SEND_ACTIONS = ("sqs:SendMessage", "sqs:GetQueueUrl")
LOG_WRITE_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
LOG_READ_ACTIONS = ("logs:GetLogEvents",)
QUEUE_DEPTH_ACTIONS = ("sqs:GetQueueAttributes", "sqs:GetQueueUrl")


def _partition(key: dict[str, str]) -> str:
    return key[resources.PARTITION_KEY]


RUN_PARTITIONS: tuple[str, ...] = (
    _partition(resources.flow_run_key("*")),
    _partition(resources.task_run_key(None, "*")),
    _partition(resources.cache_key("*")),
    _partition(resources.concurrency_key("*")),
    _partition(resources.worker_key("*", "-")),
    _partition(resources.event_key("*")),
    _partition(resources.artifact_key("*")),
    _partition(resources.variable_key("*")),
    _partition(resources.event_waiter_key("*", "-", "-")),
)
"""Item partitions a process executing flow runs writes (its runs, their task runs, the
task cache, concurrency slots, its worker heartbeat, emitted events, artifacts and
variables: docs/artifacts-and-variables.md, and its runs' event waiters:
docs/durability.md), built with the
resource model's key builders. Deployments, work pools and automations are read-only
to it: a compromised worker cannot point a deployment at other code."""


UI_PARTITIONS: tuple[str, ...] = (
    f"{resources.UI_SESSION_PREFIX}*",
    _partition(resources.flow_run_key("*")),
    _partition(resources.deployment_key("*")),
    _partition(resources.schedule_marks_key("*")),
    _partition(resources.work_pool_key("*")),
    resources.automation_partition("*"),
)
"""Item partitions the web UI's API function writes (docs/ui.md): its sessions, and what
operators change: runs (create, cancel, retry, resume with input, remove a paused
deployment's future runs), deployments and their schedules (pause, resume; the
scheduler's marks of a paused deployment are reset), work pools' queues (pause, resume)
and automations (enable, disable). Not concurrency limits, blocks, variables, artifacts
or the automations' buckets and firings."""


def pool_run_partitions(pool: str, may_start_runs_in: Iterable[str] = ()) -> tuple[str, ...]:
    """RUN_PARTITIONS narrowed to one pool (its on-prem workers): the runs whose id
    carries the pool's tag (stratoflow.run_ids; and those of the pools it may start runs
    in), its own heartbeats; the shared task cache, concurrency usage, events, artifacts,
    variables and task runs outside flows stay shared (cache entries are signed,
    docs/security.md)."""
    pools = (pool, *may_start_runs_in)
    return (
        *(_partition(resources.flow_run_key(f"{pool_tag(p)}-*")) for p in pools),
        _partition(resources.task_run_key(None, "*")),
        _partition(resources.cache_key("*")),
        _partition(resources.concurrency_key("*")),
        _partition(resources.worker_key(pool, "-")),
        _partition(resources.event_key("*")),
        _partition(resources.artifact_key("*")),
        _partition(resources.variable_key("*")),
        _partition(resources.event_waiter_key("*", "-", "-")),
    )


def table_read(table: StateTable) -> iam.PolicyStatement:
    """Read the table and query its indexes (each index by name: no wildcard)."""
    arn = table.table.table_arn
    return iam.PolicyStatement(
        sid="ReadStateTable",
        actions=list(TABLE_READ_ACTIONS),
        resources=[arn, *(f"{arn}/index/{index.name}" for index in table.spec.indexes)],
    )


def table_write(
    table: StateTable, *, partitions: Sequence[str] | None = None
) -> iam.PolicyStatement:
    """Write items; limited to the given partition key patterns when `partitions` is set
    (`dynamodb:LeadingKeys`)."""
    conditions = (
        {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(partitions)}}
        if partitions is not None
        else None
    )
    return iam.PolicyStatement(
        sid="WriteStateTable" if partitions is None else "WriteRunItems",
        actions=list(TABLE_WRITE_ACTIONS),
        resources=[table.table.table_arn],
        conditions=conditions,
    )


def queue_send(
    queues: Iterable[sqs.IQueue], *, sid: str = "SendToWorkQueues"
) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid=sid, actions=list(QUEUE_SEND_ACTIONS), resources=[q.queue_arn for q in queues]
    )


def queue_consume(queues: Iterable[sqs.IQueue]) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid="ConsumeWorkQueues",
        actions=list(QUEUE_CONSUME_ACTIONS),
        resources=[q.queue_arn for q in queues],
    )


def code_read(bucket: s3.IBucket) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid="ReadCodeBundles",
        actions=["s3:GetObject"],
        resources=[bucket.arn_for_objects(f"{resources.CODE_PREFIX}*")],
    )


def results_read_write(bucket: s3.IBucket) -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(
            sid="ReadWriteResults",
            actions=["s3:GetObject", "s3:PutObject"],
            resources=[bucket.arn_for_objects(f"{resources.RESULTS_PREFIX}*")],
        ),
        # Without ListBucket, HeadObject of a missing result answers 403 instead of 404.
        iam.PolicyStatement(
            sid="ListResults",
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{resources.RESULTS_PREFIX}*"]}},
        ),
    ]


def logs_write(log_group: logs.ILogGroup, *, sid: str = "WriteRunLogs") -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid=sid, actions=list(LOG_WRITE_ACTIONS), resources=[f"{log_group.log_group_arn}"]
    )


def logs_read(log_group: logs.ILogGroup, *, sid: str = "ReadRunLogs") -> iam.PolicyStatement:
    """Read a log group's events (`GetLogEvents` of a stream): a run's logs in the UI."""
    return iam.PolicyStatement(
        sid=sid, actions=list(LOG_READ_ACTIONS), resources=[log_group.log_group_arn]
    )


def queue_depth(
    queues: Iterable[sqs.IQueue], *, sid: str = "ReadQueueDepths"
) -> iam.PolicyStatement:
    """Read queues' message counts (`GetQueueAttributes`): no receive, no delete."""
    return iam.PolicyStatement(
        sid=sid, actions=list(QUEUE_DEPTH_ACTIONS), resources=[q.queue_arn for q in queues]
    )


def run_execution(
    *,
    table: StateTable,
    code_bucket: s3.IBucket,
    results_bucket: s3.IBucket,
    runs_log_group: logs.ILogGroup,
    send_to: Iterable[sqs.IQueue],
    run_partitions: Sequence[str] = RUN_PARTITIONS,
) -> list[iam.PolicyStatement]:
    """What executing a flow run needs (Lambda worker, ECS task, on-prem worker): read
    the table and write run items, read code, read/write results, write run logs, send to
    work queues (a run not due yet is sent on; a flow may `run_deployment`)."""
    return [
        table_read(table),
        table_write(table, partitions=run_partitions),
        code_read(code_bucket),
        *results_read_write(results_bucket),
        logs_write(runs_log_group),
        queue_send(send_to),
    ]


def automation_secrets_read(queue_prefix: str) -> iam.PolicyStatement:
    """Read the secrets of the installation's automations (webhook URLs and headers,
    `stratoflow.automations.secrets`) and no other secret: for the automations function's
    role only. Worker roles get no Secrets Manager action, so a flow's code cannot read
    them. Secrets Manager appends `-XXXXXX` to a secret's ARN, hence the trailing `*`."""
    # Imported here so that this finding's grant stays one self-contained addition.
    from stratoflow.automations.secrets import secret_name

    return iam.PolicyStatement(
        sid="ReadAutomationSecrets",
        actions=["secretsmanager:GetSecretValue"],
        resources=[
            f"arn:{Aws.PARTITION}:secretsmanager:{Aws.REGION}:{Aws.ACCOUNT_ID}:secret:"
            f"{secret_name(queue_prefix, '*')}"
        ],
    )


def block_secrets_read(
    queue_prefix: str, scopes: Iterable[str], *, sid: str
) -> iam.PolicyStatement:
    """Load blocks (`stratoflow.blocks`): GetSecretValue on the block secrets of the given
    scopes, `<queue prefix>/blocks/<scope>/*` (`_all`: blocks every pool may read; a pool's
    name: blocks saved with `pools=[...]` naming it). Only reads: a worker may not create,
    change or delete a block's secret, and `BLOCK#` items are outside RUN_PARTITIONS, so
    blocks stay configuration that operators write (docs/blocks.md)."""
    return iam.PolicyStatement(
        sid=sid,
        actions=["secretsmanager:GetSecretValue"],
        resources=[
            block_secrets_arn(queue_prefix, scope, Aws.PARTITION, Aws.REGION, Aws.ACCOUNT_ID)
            for scope in scopes
        ],
    )


def block_secrets_arn(
    queue_prefix: str, scope: str, partition: str, region: str, account: str
) -> str:
    """Every block secret of one scope (the `*`: type slug, name and the random suffix
    Secrets Manager appends to a secret's ARN)."""
    return (
        f"arn:{partition}:secretsmanager:{region}:{account}:secret:"
        f"{resources.block_secrets_prefix(queue_prefix, scope)}*"
    )


def result_key_parameter_arn(
    queue_prefix: str,
    domain: str,
    partition: str = Aws.PARTITION,
    region: str = Aws.REGION,
    account: str = Aws.ACCOUNT_ID,
) -> str:
    """The ARN of one signing domain's key parameter (`result_key_parameter_name`
    starts with `/`, which the ARN's `parameter` is followed by)."""
    name = resources.result_key_parameter_name(queue_prefix, domain)
    return f"arn:{partition}:ssm:{region}:{account}:parameter{name}"


def result_keys_read(
    queue_prefix: str, domains: Iterable[str], *, sid: str
) -> iam.PolicyStatement | None:
    """`ssm:GetParameter` on the key parameters of `domains` only (None when there are
    none): the current version and, by its `<name>:<version>` selector, the one before,
    both authorized on the parameter's ARN. No `kms:Decrypt`: the parameters are
    encrypted under the AWS managed key `aws/ssm`, whose key policy lets the account's
    principals decrypt through Parameter Store, so `ssm:GetParameter` is what decides
    who reads a key (docs/security.md)."""
    arns = [result_key_parameter_arn(queue_prefix, domain) for domain in domains]
    if not arns:
        return None
    return iam.PolicyStatement(sid=sid, actions=["ssm:GetParameter"], resources=arns)


def result_keys_manage(queue_prefix: str, domains: Sequence[str]) -> list[iam.PolicyStatement]:
    """The key-making custom resource's grants: put and delete exactly the stack's key
    parameters, and read the Secrets Manager secrets that held them in earlier versions
    (copied into a new parameter; `-??????` is the suffix Secrets Manager appends to a
    secret's ARN)."""
    return [
        iam.PolicyStatement(
            sid="PutAndDeleteResultKeys",
            actions=["ssm:PutParameter", "ssm:DeleteParameter"],
            resources=[result_key_parameter_arn(queue_prefix, domain) for domain in domains],
        ),
        iam.PolicyStatement(
            sid="ReadEarlierResultKeySecrets",
            actions=["secretsmanager:GetSecretValue"],
            resources=[
                f"arn:{Aws.PARTITION}:secretsmanager:{Aws.REGION}:{Aws.ACCOUNT_ID}:secret:"
                f"{resources.result_key_secret_name(queue_prefix, domain)}-??????"
                for domain in domains
            ],
        ),
    ]
