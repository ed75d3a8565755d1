"""The code bucket (versioned bundles) and the results bucket (expiring results), plus
the bucket that receives their server access logs."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stratoflow import resources

ACCESS_LOGS_DAYS = 90


class Buckets(Construct):
    """Both buckets: SSE-S3 encryption, all public access blocked, TLS enforced, ACLs
    disabled, server access logs. Code: versioned (a bundle overwritten by mistake can be
    restored), old versions expire. Results: `results/` expires after
    `results_expiration_days`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code_bucket_name: str | None,
        results_bucket_name: str | None,
        results_expiration_days: int,
        code_noncurrent_version_days: int,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        # Server access logs are delivered with the logging service's bucket policy
        # (feature flag @aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy in cdk.json).
        self.access_logs = _bucket(
            self,
            "AccessLogs",
            removal=removal,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(ACCESS_LOGS_DAYS))],
        )
        self.code = _bucket(
            self,
            "Code",
            removal=removal,
            bucket_name=code_bucket_name,
            versioned=True,
            access_logs=self.access_logs,
            server_access_logs_prefix="code/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-bundle-versions",
                    noncurrent_version_expiration=Duration.days(code_noncurrent_version_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        self.results = _bucket(
            self,
            "Results",
            removal=removal,
            bucket_name=results_bucket_name,
            access_logs=self.access_logs,
            server_access_logs_prefix="results/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-results",
                    prefix=resources.RESULTS_PREFIX,
                    expiration=Duration.days(results_expiration_days),
                ),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads",
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                ),
            ],
        )


def _bucket(
    scope: Construct,
    construct_id: str,
    *,
    removal: RemovalPolicy,
    lifecycle_rules: list[s3.LifecycleRule],
    bucket_name: str | None = None,
    versioned: bool = False,
    access_logs: s3.IBucket | None = None,
    server_access_logs_prefix: str | None = None,
) -> s3.Bucket:
    """A bucket with the settings every stratoflow bucket shares."""
    return s3.Bucket(
        scope,
        construct_id,
        bucket_name=bucket_name,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=removal,
        versioned=versioned,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=server_access_logs_prefix,
        lifecycle_rules=lifecycle_rules,
    )
