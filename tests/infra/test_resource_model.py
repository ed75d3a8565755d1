"""The synthesized template and local provisioning (`stratoflow.resources.provision` on
moto) create the same table, indexes, queues and log groups."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stratoflow.resources import ResourceNames, provision
from tests.infra._cdk import Synthesized, resources_of

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def provisioned(synthesized: Synthesized) -> Iterator[tuple[ResourceNames, boto3.Session]]:
    names = synthesized.full_options.names
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("STRATOFLOW_", "AWS_ENDPOINT_URL")) or name == "AWS_PROFILE":
                patch.delenv(name)
        for name, value in AWS_ENV.items():
            patch.setenv(name, value)
        with mock_aws():
            session = boto3.Session(region_name="us-east-1")
            provision(session, names)
            yield names, session


def _key_schema(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(k["AttributeName"], k["KeyType"]) for k in schema]


def template_table(template: Any) -> dict[str, Any]:
    [table] = [t["Properties"] for t in resources_of(template, "AWS::DynamoDB::Table").values()]
    return {
        "name": table["TableName"],
        "billing": table["BillingMode"],
        "keys": _key_schema(table["KeySchema"]),
        "attributes": sorted(
            (a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]
        ),
        "indexes": {
            i["IndexName"]: (_key_schema(i["KeySchema"]), i["Projection"]["ProjectionType"])
            for i in table["GlobalSecondaryIndexes"]
        },
        "stream": table["StreamSpecification"]["StreamViewType"],
        "ttl": table["TimeToLiveSpecification"]["AttributeName"],
        "pitr": table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
    }


def provisioned_table(session: boto3.Session, name: str) -> dict[str, Any]:
    dynamodb = session.client("dynamodb")
    table = dynamodb.describe_table(TableName=name)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    return {
        "name": table["TableName"],
        "billing": table["BillingModeSummary"]["BillingMode"],
        "keys": _key_schema(table["KeySchema"]),
        "attributes": sorted(
            (a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]
        ),
        "indexes": {
            i["IndexName"]: (_key_schema(i["KeySchema"]), i["Projection"]["ProjectionType"])
            for i in table["GlobalSecondaryIndexes"]
        },
        "stream": table["StreamSpecification"]["StreamViewType"],
        "ttl": ttl["AttributeName"],
        "pitr": backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED",
    }


def test_table_and_indexes_match(full_template: Any, provisioned: tuple[ResourceNames, Any]):
    names, session = provisioned
    assert template_table(full_template) == provisioned_table(session, names.table)


def template_queues(template: Any, prefix: str) -> dict[str, Any]:
    queues = resources_of(template, "AWS::SQS::Queue")
    name_of = {lid: q["Properties"].get("QueueName") for lid, q in queues.items()}
    found = {}
    for q in queues.values():
        props = q["Properties"]
        name = props.get("QueueName")
        if name is None or not name.startswith(prefix):
            continue  # the automations failure queue is not part of the resource model
        redrive = props.get("RedrivePolicy")
        found[name] = (
            int(props["MessageRetentionPeriod"]),
            None
            if redrive is None
            else (
                name_of[redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]],
                redrive["maxReceiveCount"],
            ),
        )
    return found


def provisioned_queues(session: boto3.Session, prefix: str) -> dict[str, Any]:
    sqs = session.client("sqs")
    found = {}
    for url in sqs.list_queues(QueueNamePrefix=prefix)["QueueUrls"]:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = attributes.get("RedrivePolicy")
        name = url.rsplit("/", 1)[-1]
        retention = int(attributes["MessageRetentionPeriod"])
        if redrive is None:
            found[name] = (retention, None)
        else:
            policy = json.loads(redrive)
            found[name] = (
                retention,
                (
                    policy["deadLetterTargetArn"].rsplit(":", 1)[-1],
                    int(policy["maxReceiveCount"]),
                ),
            )
    return found


def test_queues_and_redrive_policies_match(
    full_template: Any, provisioned: tuple[ResourceNames, Any]
):
    names, session = provisioned
    expected = provisioned_queues(session, names.queue_prefix)
    assert len(expected) == 2 * len(names.work_queues) + 2 == 12  # + the task queue, its DLQ
    assert template_queues(full_template, names.queue_prefix) == expected
    # SQS's longest retention, for work queues as for DLQs (4 days if unset).
    assert {retention for retention, _ in expected.values()} == {14 * 24 * 3600}


def test_log_groups_match(full_template: Any, provisioned: tuple[ResourceNames, Any]):
    names, session = provisioned
    groups = session.client("logs").describe_log_groups(logGroupNamePrefix=names.runs_log_group)
    expected = {g["logGroupName"]: g.get("retentionInDays") for g in groups["logGroups"]}
    in_template = {
        g["Properties"]["LogGroupName"]: g["Properties"].get("RetentionInDays")
        for g in resources_of(full_template, "AWS::Logs::LogGroup").values()
        if g["Properties"].get("LogGroupName") == names.runs_log_group
    }
    assert in_template == expected == {names.runs_log_group: 30}
