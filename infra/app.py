"""The CDK app behind `cdk deploy`.

Its stacks (state table, queues, buckets, Lambdas, ECS, dashboards) are built from the
shared `stratoflow.resources` module; until they land this app synthesizes no stack.
"""

from __future__ import annotations

import aws_cdk as cdk


def build_app() -> cdk.App:
    return cdk.App()


if __name__ == "__main__":
    build_app().synth()
