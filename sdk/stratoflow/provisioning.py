"""Creating the resource model on an endpoint (the emulator or a sandbox account).

Production installs use the CDK app, which reads the same `stratoflow.resources`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from stratoflow.backends.aws.clients import AwsClients, AwsConfig
from stratoflow.backends.aws.result_key_setup import create_result_key
from stratoflow.resources import (
    LOG_RETENTION_DAYS,
    MAX_RECEIVE_COUNT,
    OPERATORS_SIGNING_DOMAIN,
    QUEUE_RETENTION_SECONDS,
    TASKS_SIGNING_DOMAIN,
    ResourceNames,
    dead_letter_queue_of,
    task_queue_name,
    work_queue_name,
)

if TYPE_CHECKING:
    import boto3


def provision_all(
    session: boto3.Session, names: ResourceNames, *, endpoint_url: str | None = None
) -> None:
    region = session.region_name or "us-east-1"
    clients = AwsClients(session, AwsConfig(region=region, endpoint_url=endpoint_url))
    provision_table(clients, names)
    for bucket in (names.results_bucket, names.code_bucket):
        provision_bucket(clients, bucket, versioned=bucket == names.code_bucket)
    provision_log_group(clients, names.runs_log_group)
    provision_result_key(clients, names.queue_prefix, OPERATORS_SIGNING_DOMAIN)
    for pool, queue in names.work_queues:
        provision_work_queue(clients, names.queue_prefix, pool, queue)
    provision_task_queue(clients, names.queue_prefix)


def provision_table(clients: AwsClients, names: ResourceNames) -> None:
    spec = names.table_spec
    dynamodb = clients.dynamodb
    try:
        dynamodb.create_table(
            TableName=spec.name,
            BillingMode=spec.billing_mode,  # type: ignore[arg-type]
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"} for name in spec.string_attributes
            ],
            KeySchema=[
                {"AttributeName": spec.partition_key, "KeyType": "HASH"},
                {"AttributeName": spec.sort_key, "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": index.name,
                    "KeySchema": [
                        {"AttributeName": index.partition_key, "KeyType": "HASH"},
                        {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in spec.indexes
            ],
            StreamSpecification={
                "StreamEnabled": True,
                "StreamViewType": spec.stream_view_type,  # type: ignore[typeddict-item]
            },
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
    dynamodb.get_waiter("table_exists").wait(
        TableName=spec.name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    ttl = dynamodb.describe_time_to_live(TableName=spec.name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        dynamodb.update_time_to_live(
            TableName=spec.name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
        )
    backups = dynamodb.describe_continuous_backups(TableName=spec.name)
    recovery = backups["ContinuousBackupsDescription"].get("PointInTimeRecoveryDescription", {})
    if recovery.get("PointInTimeRecoveryStatus") != "ENABLED":
        dynamodb.update_continuous_backups(
            TableName=spec.name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )


def provision_bucket(clients: AwsClients, bucket: str, *, versioned: bool) -> None:
    s3 = clients.s3
    try:
        if clients.config.region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(
                Bucket=bucket,
                CreateBucketConfiguration={"LocationConstraint": clients.config.region},  # type: ignore[typeddict-item]
            )
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    if versioned:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def provision_log_group(clients: AwsClients, name: str) -> None:
    logs = clients.logs
    try:
        logs.create_log_group(logGroupName=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise
    logs.put_retention_policy(logGroupName=name, retentionInDays=LOG_RETENTION_DAYS)


def provision_work_queue(clients: AwsClients, prefix: str, pool: str, queue: str) -> None:
    """A work queue with its DLQ, and its pool's result-signing key."""
    provision_result_key(clients, prefix, pool)
    _queue_with_dlq(clients.sqs, work_queue_name(prefix, pool, queue))


def provision_task_queue(clients: AwsClients, prefix: str) -> None:
    """The background task queue with its DLQ, and the key of the `_tasks` domain."""
    provision_result_key(clients, prefix, TASKS_SIGNING_DOMAIN)
    _queue_with_dlq(clients.sqs, task_queue_name(prefix))


def provision_result_key(clients: AwsClients, prefix: str, domain: str) -> None:
    """A signing domain's key parameter (an existing one is kept; an installation of an
    earlier version gets its Secrets Manager secret's key: result_key_setup)."""
    create_result_key(clients.ssm, clients.secretsmanager, prefix, domain)


def _queue_with_dlq(sqs: Any, name: str) -> None:
    retention = {"MessageRetentionPeriod": str(QUEUE_RETENTION_SECONDS)}
    dlq_url = _queue(sqs, dead_letter_queue_of(name), retention)
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
    _queue(sqs, name, {**retention, "RedrivePolicy": json.dumps(redrive)})


def _queue(sqs: Any, name: str, attributes: dict[str, str]) -> str:
    """Create the queue, or bring an existing one (provisioned by an older version, with
    other attributes: SQS then refuses CreateQueue) to these attributes."""
    try:
        return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("QueueAlreadyExists", "QueueNameExists"):
            raise
    url = str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url
