"""Fixtures and helpers of the CDK tests (conftest.py imports the fixtures).

The CDK app is synthesized once per session (a synthesis takes seconds): one app with
the default stack (`Stratoflow-dev`, cdk.json's context only) and a stack with every
option in use (`Stratoflow-full`: two process pools, a lambda and an ecs pool, an on-prem
principal, another pool one process pool may start runs in, an alarm e-mail). Bundling
is skipped with the CDK's own context key; the cdk-nag plugin runs on both stacks."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


def _node_major() -> str:
    found = subprocess.run(
        ["node", "-p", "process.versions.node.split('.')[0]"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip()


# jsii prints a banner for an end-of-life Node; as the Makefile does, silence it.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", _node_major())
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
import aws_cdk as cdk  # noqa: E402
from aws_cdk import assertions  # noqa: E402

from infra.app import build_app  # noqa: E402
from infra.constructs.lambda_code import LocalBundling  # noqa: E402
from infra.context import StackOptions, parse_options  # noqa: E402
from infra.stacks.stratoflow_stack import StratoflowStack  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CDK_JSON_CONTEXT: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
PRINCIPAL = "arn:aws:iam::123456789012:role/datacenter-worker"
FULL_CONTEXT: dict[str, Any] = {
    "stage": "full",
    "work_pools": json.dumps(
        {
            "default": {"queues": [{"name": "default"}, {"name": "critical", "priority": 0}]},
            "fast": {"type": "lambda", "concurrency_limit": 5},
            "gpu": {"type": "ecs"},
            # A second process pool, with '-' in its name: one on-prem policy each.
            "etl-nightly": {},
        }
    ),
    "on_prem_may_start_runs_in": json.dumps({"etl-nightly": ["fast"]}),
    "on_prem_principal_arn": PRINCIPAL,
    "on_prem_external_id": "stratoflow-full",
    "alarm_email": "oncall@example.com",
    "lambda_worker_timeout_seconds": "600",
    "webhook_allowed_hosts": "hooks.example.com",
    "task_modules": "functions.tasks.example,functions.tasks.more",
    "task_worker_timeout_seconds": "300",
}


@dataclass
class Synthesized:
    default: StratoflowStack
    full: StratoflowStack
    outdir: Path
    assembly: Any
    bundled: list[str] = field(default_factory=list)
    aws_requests: list[str] = field(default_factory=list)

    def template(self, stack: StratoflowStack) -> Any:
        return assertions.Template.from_json(
            self.assembly.get_stack_by_name(stack.stack_name).template
        )

    @property
    def full_options(self) -> StackOptions:
        return self.full.options


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    import botocore.endpoint

    outdir = tmp_path_factory.mktemp("cdk.out")
    bundled: list[str] = []
    requests: list[str] = []

    def spy_bundle(self: LocalBundling, output_dir: str, **_: Any) -> bool:
        bundled.append(output_dir)
        return False

    def no_aws(self: Any, operation_model: Any, *args: Any, **kwargs: Any) -> Any:
        requests.append(operation_model.name)
        raise AssertionError("synthesis must not call AWS")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LocalBundling, "try_bundle", spy_bundle)
        patch.setattr(botocore.endpoint.Endpoint, "make_request", no_aws)
        app = cdk.App(
            context={**CDK_JSON_CONTEXT, "aws:cdk:bundling-stacks": []}, outdir=str(outdir)
        )
        build_app(app)
        default = app.node.find_child("Stratoflow-dev")
        options = parse_options(FULL_CONTEXT)
        full = StratoflowStack(app, options.stack_name, options=options)
        assembly = app.synth()
    yield Synthesized(default, full, outdir, assembly, bundled, requests)


@pytest.fixture(scope="session")
def full_template(synthesized: Synthesized) -> Any:
    return synthesized.template(synthesized.full)


@pytest.fixture(scope="session")
def default_template(synthesized: Synthesized) -> Any:
    return synthesized.template(synthesized.default)


def resources_of(template: Any, kind: str, props: Any = None) -> dict[str, dict[str, Any]]:
    """{logical id: resource} of one type (optionally matching `props`)."""
    found = template.find_resources(kind, {"Properties": props} if props is not None else None)
    return dict(found)


def only(template: Any, kind: str, props: Any = None) -> dict[str, Any]:
    found = resources_of(template, kind, props)
    assert len(found) == 1, f"expected one {kind} matching {props}, found {len(found)}"
    return next(iter(found.values()))["Properties"]  # type: ignore[no-any-return]


def logical_id(stack: Any, construct: Any) -> str:
    """The logical id of a construct's CloudFormation resource."""
    child = getattr(construct, "node", construct).default_child or construct
    return str(stack.resolve(child.logical_id))
