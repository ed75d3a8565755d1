"""The app as `cdk synth` builds it: offline, no bundling in tests, cdk-nag clean."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from infra import nag
from infra.app import build_app
from infra.context import ContextError
from tests.infra._cdk import CDK_JSON_CONTEXT, ROOT, Synthesized, cdk


def test_stack_names_come_from_the_stage(synthesized: Synthesized):
    assert synthesized.default.stack_name == "Stratoflow-dev"
    assert synthesized.full.stack_name == "Stratoflow-full"


def test_cdk_json_runs_the_app_module():
    config = json.loads((ROOT / "cdk.json").read_text())
    assert config["app"] == "python3 -m infra.app"
    assert config["context"]["stage"] == "dev"


def test_synthesis_makes_no_aws_call_and_no_lookup(synthesized: Synthesized):
    assert synthesized.aws_requests == []
    # A context lookup (Vpc.from_lookup, ...) would need credentials at synth time.
    manifest = json.loads((synthesized.outdir / "manifest.json").read_text())
    assert not manifest.get("missing")


def test_skipped_bundling_does_not_run_local_bundling(synthesized: Synthesized):
    """`aws:cdk:bundling-stacks = []` skips ILocalBundling too (no pip in tests): the
    asset is the unbundled source directory."""
    assert synthesized.bundled == []
    assets = json.loads((synthesized.outdir / "Stratoflow-dev.assets.json").read_text())
    sources = [a["source"] for a in assets["files"].values()]
    code = [s for s in sources if s.get("packaging") == "zip"]
    # One shared code asset for every function of ours, the unbundled source directory;
    # the other is CDK's custom resource provider framework (the result keys), staged.
    ours = [s for s in code if not s["path"].startswith("asset.")]
    assert len(ours) == 1 and Path(ours[0]["path"]) == ROOT
    assert len(code) == 2


def test_cdk_nag_reports_no_unacknowledged_finding(synthesized: Synthesized):
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    plugins = {p["pluginName"]: p for p in report["pluginReports"]}
    assert plugins[nag.PLUGIN]["conclusion"] == "success"
    assert plugins[nag.PLUGIN]["violations"] == []


def test_every_acknowledgment_has_a_reason_and_is_documented(synthesized: Synthesized):
    docs = (ROOT / "docs" / "infrastructure.md").read_text()
    for stack in (synthesized.default, synthesized.full):
        for finding in nag.findings(stack):
            assert len(finding.reason) > 40, finding.rule
            rule = re.sub(r"\[.*", "", finding.rule)
            assert rule in docs, f"{rule} is acknowledged but not in docs/infrastructure.md"


def test_unknown_findings_still_fail_synthesis(tmp_path: Path):
    """The plugin is wired so that a finding nobody acknowledged fails `cdk synth`."""
    from aws_cdk import aws_sqs as sqs

    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Bad")
    sqs.Queue(stack, "Plain")  # no DLQ, no TLS enforcement
    import cdk_nag

    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
    with pytest.raises(Exception, match="ValidationFailed"):
        app.synth()


def test_bad_context_stops_before_any_stack(tmp_path: Path):
    app = cdk.App(
        context={**CDK_JSON_CONTEXT, "stage": "Prod!", "ecs_cpu": "3"}, outdir=str(tmp_path)
    )
    with pytest.raises(ContextError) as caught:
        build_app(app)
    message = str(caught.value)
    assert "-c stage:" in message
    assert "-c ecs_cpu:" in message
    assert app.node.children == []


def test_main_prints_the_context_error_and_exits(monkeypatch: pytest.MonkeyPatch, capsys: Any):
    from infra import app as app_module

    app_class = cdk.App
    monkeypatch.setattr(
        app_module.cdk, "App", lambda: app_class(context={"work_pools": "{not json"})
    )
    with pytest.raises(SystemExit) as caught:
        app_module.main()
    assert caught.value.code == 1
    assert "-c work_pools: not valid JSON" in capsys.readouterr().err
