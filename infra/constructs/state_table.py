"""The state table, from the shared resource model (`stratoflow.resources.TableSpec`)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from stratoflow import resources

BILLING = {"PAY_PER_REQUEST": dynamodb.BillingMode.PAY_PER_REQUEST}
STREAM = {
    "NEW_AND_OLD_IMAGES": dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
    "NEW_IMAGE": dynamodb.StreamViewType.NEW_IMAGE,
    "OLD_IMAGE": dynamodb.StreamViewType.OLD_IMAGE,
    "KEYS_ONLY": dynamodb.StreamViewType.KEYS_ONLY,
}


def _string(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class StateTable(Construct):
    """Runs, task runs, deployments, work pools, events, cache and concurrency slots: one
    table, on-demand, with a NEW_AND_OLD_IMAGES stream (the automations Lambda reads it),
    point-in-time recovery and a TTL attribute."""

    def __init__(
        self, scope: Construct, construct_id: str, *, spec: resources.TableSpec, retain: bool
    ) -> None:
        super().__init__(scope, construct_id)
        self.spec = spec
        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=spec.name,
            partition_key=_string(spec.partition_key),
            sort_key=_string(spec.sort_key),
            billing_mode=BILLING[spec.billing_mode],
            stream=STREAM[spec.stream_view_type],
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=spec.ttl_attribute,
            deletion_protection=retain,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        for index in spec.indexes:
            self.table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_string(index.partition_key),
                sort_key=_string(index.sort_key),
                projection_type=dynamodb.ProjectionType.ALL,
            )
