"""State table (from the resource model) and buckets."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from stratoflow import resources
from tests.infra._cdk import Synthesized, only, resources_of


def test_table_is_the_resource_models(full_template: Any, synthesized: Synthesized):
    spec = synthesized.full_options.names.table_spec
    table = only(full_template, "AWS::DynamoDB::Table")
    assert table["TableName"] == spec.name == "stratoflow-full"
    assert table["BillingMode"] == spec.billing_mode == "PAY_PER_REQUEST"
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["TimeToLiveSpecification"] == {
        "AttributeName": resources.TTL_ATTRIBUTE,
        "Enabled": True,
    }
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == [
        "by_deployment",
        "by_state",
        "by_time",
    ]
    assert all(
        i["Projection"] == {"ProjectionType": "ALL"} for i in table["GlobalSecondaryIndexes"]
    )
    assert table["DeletionProtectionEnabled"] is True


def test_table_and_buckets_are_retained(full_template: Any):
    for kind in ("AWS::DynamoDB::Table", "AWS::S3::Bucket"):
        for resource in resources_of(full_template, kind).values():
            assert resource["DeletionPolicy"] == "Retain"


BLOCK_ALL = {
    "BlockPublicAcls": True,
    "BlockPublicPolicy": True,
    "IgnorePublicAcls": True,
    "RestrictPublicBuckets": True,
}


def test_every_bucket_is_encrypted_private_and_tls_only(
    full_template: Any, synthesized: Synthesized
):
    buckets = resources_of(full_template, "AWS::S3::Bucket")
    # code, results, their access logs, and the web UI's CloudFront logs
    assert len(buckets) == 4
    web_ui = synthesized.full.web_ui
    assert web_ui is not None
    cdn_logs = str(synthesized.full.resolve(web_ui.log_bucket.node.default_child.logical_id))
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == BLOCK_ALL
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        # CloudFront writes its standard logs with an ACL: that bucket alone has ACLs.
        ownership = "ObjectWriter" if logical_id == cdn_logs else "BucketOwnerEnforced"
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": ownership}]
    policies = resources_of(full_template, "AWS::S3::BucketPolicy")
    assert len(policies) == 4
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_code_bucket_is_versioned_and_logs_access(full_template: Any, synthesized: Synthesized):
    code = full_template.to_json()["Resources"][_id(synthesized, "code")]["Properties"]
    assert code["VersioningConfiguration"] == {"Status": "Enabled"}
    assert code["LoggingConfiguration"]["LogFilePrefix"] == "code/"
    [rule] = code["LifecycleConfiguration"]["Rules"]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90}


def test_results_expire(full_template: Any, synthesized: Synthesized):
    results = full_template.to_json()["Resources"][_id(synthesized, "results")]["Properties"]
    assert "VersioningConfiguration" not in results
    rules = {r["Id"]: r for r in results["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-results"]["Prefix"] == resources.RESULTS_PREFIX
    assert rules["expire-results"]["ExpirationInDays"] == 30
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 1
    }


def test_bucket_names_are_left_to_cloudformation_by_default(full_template: Any):
    full_template.has_resource_properties(
        "AWS::S3::Bucket", Match.object_like({"VersioningConfiguration": Match.any_value()})
    )
    for bucket in resources_of(full_template, "AWS::S3::Bucket").values():
        assert "BucketName" not in bucket["Properties"]


def _id(synthesized: Synthesized, which: str) -> str:
    bucket = getattr(synthesized.full.buckets, which)
    return str(synthesized.full.resolve(bucket.node.default_child.logical_id))
