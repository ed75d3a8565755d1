"""Synthesis of the examples of docs/infrastructure.md (`tests/infra/_doc_examples.py`),
once per session, as `cdk synth` would run cdk.json's `python3 -m infra.app`.

The app gets the context the CDK CLI gives it: cdk.json's context, the example's `-c`
values (strings) over it, and the keys the CLI adds (aws-cdk's `contextFromSettings`).
One difference: the CLI asks for bundling of every stack, the tests for none (no pip
install per example). Each example is its own `cdk.App` built by `infra.app.build_app`,
so the cdk-nag plugin is added exactly as in production; examples with the same context
are synthesized once. All of them run in this process (one jsii kernel)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra import nag
from infra.app import build_app
from infra.context import ContextError
from tests.infra._cdk import CDK_JSON_CONTEXT, cdk
from tests.infra._doc_examples import documented_examples

CLI_CONTEXT: dict[str, Any] = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
    # The CLI reads validation-report.json itself and fails the command on a violation.
    "@aws-cdk/core:failSynthOnValidationErrors": False,
    # The CLI sets ["**"] (bundle every stack); [] skips bundling, local bundling too.
    "aws:cdk:bundling-stacks": [],
}


def cli_context(example_context: dict[str, str]) -> dict[str, Any]:
    return {**CDK_JSON_CONTEXT, **example_context, **CLI_CONTEXT}


@dataclass(frozen=True)
class ExampleSynthesis:
    outdir: Path
    context_error: str | None = None

    def nag_report(self) -> dict[str, Any] | None:
        """cdk-nag's report in validation-report.json (None: the plugin did not run)."""
        path = self.outdir / "validation-report.json"
        if not path.exists():
            return None
        reports = json.loads(path.read_text())["pluginReports"]
        return next((r for r in reports if r["pluginName"] == nag.PLUGIN), None)

    @property
    def templates(self) -> list[Path]:
        return sorted(self.outdir.glob("*.template.json"))


def describe_violations(report: dict[str, Any]) -> str:
    """One line per unacknowledged finding: the id to acknowledge and where it is."""
    return "\n".join(
        f"{violation['ruleName']} at {construct['constructPath']}"
        for violation in report["violations"]
        for construct in violation["violatingConstructs"]
    )


def synthesize(context: dict[str, Any], outdir: Path) -> ExampleSynthesis:
    app = cdk.App(context=context, outdir=str(outdir))
    try:
        build_app(app)
    except ContextError as exc:
        return ExampleSynthesis(outdir, context_error=str(exc))
    app.synth()
    return ExampleSynthesis(outdir)


@pytest.fixture(scope="session")
def documented_syntheses(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, ExampleSynthesis]:
    """{example id: its synthesis} for every example of the page."""
    by_context: dict[str, ExampleSynthesis] = {}
    syntheses = {}
    for example in documented_examples():
        key = json.dumps(example.context, sort_keys=True)
        if key not in by_context:
            outdir = tmp_path_factory.mktemp(f"example-{example.line}")
            by_context[key] = synthesize(cli_context(example.context), outdir)
        syntheses[example.id] = by_context[key]
    return syntheses
