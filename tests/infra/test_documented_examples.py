"""Every context example of docs/infrastructure.md synthesizes as `cdk synth` would run
it, with no unacknowledged cdk-nag finding and no cfn-lint error; cdk.json's entry point
runs as the CDK CLI starts it."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_by_config

from tests.infra._cdk import ROOT, Synthesized
from tests.infra._doc_examples import DOC, FENCE, Example, documented_examples
from tests.infra._documented import ExampleSynthesis, cli_context, describe_violations

EXAMPLES = documented_examples()

CFN_LINT_REGIONS = ["us-east-1", "eu-west-1"]
"""cfn-lint's default region and the region of the page's examples."""
CFN_LINT_IGNORED = [
    # W3005 (DependsOn already enforced by a GetAtt): aws-cdk-lib's lambda.Function adds a
    # DependsOn on its role and the role's default policy on purpose (the policy must
    # exist before the function runs), which also names the role it already references.
    "W3005",
]


def _pool_types(example: Example) -> set[str]:
    pools = json.loads(example.context.get("work_pools", "{}"))
    specs = pools.values() if isinstance(pools, dict) else pools
    return {(spec or {}).get("type", "process") for spec in specs}


def _with(*keys: str) -> list[Example]:
    return [example for example in EXAMPLES if set(keys) <= set(example.context)]


def _ecr_example() -> Example:
    ecr = [e for e in _with("ecs_image") if ".dkr.ecr." in e.context["ecs_image"]]
    assert ecr, "the page shows no ecs_image from ECR"
    return ecr[0]


def test_the_page_shows_each_kind_of_installation():
    assert any(example.context == {} for example in EXAMPLES), "no default example"
    assert any("lambda" in _pool_types(example) for example in EXAMPLES), "no lambda pool"
    ecs = [e for e in _with("ecs_subnet_ids", "ecs_security_group_ids") if "ecs" in _pool_types(e)]
    assert any(".dkr.ecr." in e.context.get("ecs_image", "") for e in ecs), "no ECR ecs pool"
    assert any(
        e.context["stage"] == "prod" and e.context["retain_data"] == "false"
        for e in _with("stage", "retain_data")
    )
    assert _with("on_prem_principal_arn")
    assert _with("alarm_email")


def test_every_cdk_command_of_the_page_is_an_example():
    """A command in a block the parser skips (```console, no language) would go
    untested: every `cdk synth|deploy` / `make synth` of any block must be an example."""
    text = DOC.read_text()
    commands = [
        line
        for fence in FENCE.finditer(text)
        for line in fence.group("body").splitlines()
        if not line.lstrip().startswith("#")
        and re.search(r"\bcdk\s+(synth|deploy)\b|\bmake\s+synth\b", line)
    ]
    assert len(commands) == len(EXAMPLES), commands


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.id for example in EXAMPLES])
def test_example_synthesizes_without_nag_findings(
    example: Example, documented_syntheses: dict[str, ExampleSynthesis]
):
    synthesis = documented_syntheses[example.id]
    assert synthesis.context_error is None, f"{example}\n{synthesis.context_error}"
    report = synthesis.nag_report()
    assert report is not None, f"cdk-nag did not run for {example}"
    assert not report["violations"], (
        f"{example}\nunacknowledged cdk-nag findings:\n{describe_violations(report)}"
    )
    assert report["conclusion"] == "success"
    assert [path.name for path in synthesis.templates] == [
        f"Stratoflow-{example.context.get('stage', 'dev')}.template.json"
    ]


def test_cfn_lint_finds_no_error_in_any_template(
    documented_syntheses: dict[str, ExampleSynthesis], synthesized: Synthesized
):
    """One cfn-lint run over every example's template and the session's two stacks."""
    examples_of: dict[Path, list[str]] = {}
    for example_id, synthesis in documented_syntheses.items():
        for template in synthesis.templates:
            examples_of.setdefault(template, []).append(example_id)
    for template in sorted(synthesized.outdir.glob("*.template.json")):
        examples_of[template] = [template.stem]
    matches = lint_by_config(
        ManualArgs(
            templates=[str(template) for template in examples_of],
            regions=CFN_LINT_REGIONS,
            ignore_checks=CFN_LINT_IGNORED,
        )
    )

    def where(match: Any) -> str:
        names = ", ".join(examples_of.get(Path(match.filename), [match.filename]))
        return f"{names} line {match.linenumber}: {match.rule.id} {match.message}"

    errors = [where(match) for match in matches if match.rule.id.startswith("E")]
    others = {f"{m.rule.id} {m.message}" for m in matches if not m.rule.id.startswith("E")}
    for warning in sorted(others):  # once per distinct finding, not per template
        warnings.warn(f"cfn-lint: {warning}", stacklevel=1)
    assert errors == [], "\n".join(errors)


def test_ecr_example_has_one_wildcard_the_registry_token(
    documented_syntheses: dict[str, ExampleSynthesis],
):
    """The one wildcard the ECR example acknowledges: ecr:GetAuthorizationToken."""
    example = _ecr_example()
    synthesis = documented_syntheses[example.id]
    [template_path] = synthesis.templates
    resources = json.loads(template_path.read_text())["Resources"]
    [policy] = [
        resource["Properties"]["PolicyDocument"]["Statement"]
        for resource in resources.values()
        if resource["Type"] == "AWS::IAM::Policy"
        and resource["Metadata"]["aws:cdk:path"].endswith("/ExecutionRole/DefaultPolicy/Resource")
    ]
    on_everything = [s["Action"] for s in policy if s["Resource"] == "*"]
    assert on_everything == ["ecr:GetAuthorizationToken"]
    [pull] = [s for s in policy if "ecr:BatchGetImage" in s["Action"]]
    assert pull["Resource"].endswith(":repository/flows")
    report = synthesis.nag_report()
    assert report is not None
    stack, _ = template_path.name.split(".", 1)
    acknowledged = {(s["ruleName"], s["acknowledgedAt"]) for s in report["suppressedViolations"]}
    wildcard = ("AwsSolutions-IAM5[Resource::*]", f"{stack}/EcsRunner/FlowRun/ExecutionRole")
    assert wildcard in acknowledged


def test_public_images_need_no_wildcard_acknowledgment(synthesized: Synthesized):
    from infra import nag

    stack = synthesized.default
    assert not stack.ecs.pulls_from_ecr
    concerned = {finding.construct.node.path for finding in nag.findings(stack)}
    assert stack.ecs.execution_role.node.path not in concerned


def test_cdk_json_entry_point_synthesizes_the_ecr_example(tmp_path: Path):
    """cdk.json's command in a child process, given the context as the CDK CLI gives it
    (CDK_CONTEXT_JSON, CDK_OUTDIR); the CLI then fails on a violation in the report."""
    example = _ecr_example()
    app_command = shlex.split(json.loads((ROOT / "cdk.json").read_text())["app"])
    assert app_command[0] == "python3"  # `make synth` puts the project's .venv first on PATH
    environment = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps(cli_context(example.context)),
        "CDK_OUTDIR": str(tmp_path),
    }
    finished = subprocess.run(
        [sys.executable, *app_command[1:]],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    report = ExampleSynthesis(tmp_path).nag_report()
    assert report is not None, finished.stderr
    assert not report["violations"], describe_violations(report)
    stage = example.context.get("stage", "dev")
    assert (tmp_path / f"Stratoflow-{stage}.template.json").exists()
