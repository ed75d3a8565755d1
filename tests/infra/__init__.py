"""Tests of the CDK app (infra/): assertions per construct, the resource model, cdk-nag."""
