"""Work queues made by `provision` keep messages 14 days, including queues that an
older version made with SQS's default (4 days)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from stratoflow import resources
from stratoflow.backends.aws.clients import AwsClients
from stratoflow.provisioning import provision_work_queue


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "STRATOFLOW_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield boto3.Session(
            region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )


def retention(session: boto3.Session, name: str) -> int:
    sqs = session.client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["MessageRetentionPeriod"])


def test_queues_keep_messages_14_days_and_older_queues_are_brought_to_it(
    session: boto3.Session,
):
    sqs = session.client("sqs")
    work = resources.work_queue_name("sf", "etl", "old")
    dlq = resources.dead_letter_queue_name("sf", "etl", "old")
    sqs.create_queue(QueueName=dlq)  # as an older version provisioned them
    sqs.create_queue(QueueName=work)
    assert retention(session, work) == 4 * 24 * 3600  # SQS's default
    clients = AwsClients(session)
    provision_work_queue(clients, "sf", "etl", "old")
    provision_work_queue(clients, "sf", "etl", "new")
    provision_work_queue(clients, "sf", "etl", "new")  # again: idempotent
    for pool_queue in ("old", "new"):
        for name in (
            resources.work_queue_name("sf", "etl", pool_queue),
            resources.dead_letter_queue_name("sf", "etl", pool_queue),
        ):
            assert retention(session, name) == 14 * 24 * 3600 == resources.QUEUE_RETENTION_SECONDS
