"""The Lambda functions, their triggers and their environment."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Match

from infra.constructs.functions import ECS_ENV, LAMBDA_HOME
from stratoflow.settings import Settings, env_var
from stratoflow.workers.ecs import EcsConfig
from tests.infra._cdk import ROOT, Synthesized, logical_id, only, resources_of

HANDLERS = {
    "stratoflow-full-scheduler": "functions.scheduler.handler.handler",
    "stratoflow-full-automations": "functions.automations.handler.handler",
    "stratoflow-full-lambda-worker": "functions.lambda_worker.handler.handler",
    "stratoflow-full-ecs-dispatcher": "functions.ecs_dispatcher.handler.handler",
    "stratoflow-full-ecs-task-stopped": "functions.ecs_dispatcher.handler.on_task_stopped",
    "stratoflow-full-task-worker": "functions.task_worker.handler.handler",
    # The custom resource that makes the result-signing keys (at deploy time).
    "stratoflow-full-result-keys": "functions.result_keys.handler.on_event",
    "stratoflow-full-api": "functions.api.handler.handler",
}
PROVIDER_FRAMEWORK = "stratoflow-full-result-keys-provider"
"""CDK's custom resource provider framework (its code, Node.js), which calls the
result-keys handler: not one of ours."""


def functions(template: Any) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["FunctionName"]: r["Properties"]
        for r in resources_of(template, "AWS::Lambda::Function").values()
        if r["Properties"]["FunctionName"] != PROVIDER_FRAMEWORK
    }


def test_the_provider_framework_is_cdks_and_logs_to_its_own_group(full_template: Any):
    [framework] = [
        r["Properties"]
        for r in resources_of(full_template, "AWS::Lambda::Function").values()
        if r["Properties"]["FunctionName"] == PROVIDER_FRAMEWORK
    ]
    assert framework["Handler"] == "framework.onEvent"
    assert framework["Runtime"].startswith("nodejs")
    only(
        full_template,
        "AWS::Logs::LogGroup",
        {"LogGroupName": f"/aws/lambda/{PROVIDER_FRAMEWORK}", "RetentionInDays": Match.any_value()},
    )


def test_functions_run_python_312_from_one_code_asset(full_template: Any):
    found = functions(full_template)
    assert {name: f["Handler"] for name, f in found.items()} == HANDLERS
    assert {f["Runtime"] for f in found.values()} == {"python3.12"}
    assert {f["Architectures"][0] for f in found.values()} == {"x86_64"}
    assert len({f["Code"]["S3Key"] for f in found.values()}) == 1  # one shared asset


def test_handlers_are_in_functions_dir():
    """Handler strings name `functions/<name>/handler.py` (copied into the bundle as is);
    each defines its handler function, or imports it (the api function's comes from
    stratoflow.ui.app)."""
    for handler in HANDLERS.values():
        module, _function = handler.rsplit(".", 1)
        path = (ROOT / Path(*module.split("."))).with_suffix(".py")
        assert path.parent.parent == ROOT / "functions", handler
        tree = ast.parse(path.read_text())
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        defined |= {
            alias.asname or alias.name
            for n in tree.body
            if isinstance(n, ast.ImportFrom)
            for alias in n.names
        }
        assert _function in defined, handler


def test_environment_is_built_from_settings(full_template: Any):
    for name, function in functions(full_template).items():
        env = function["Environment"]["Variables"]
        assert env[env_var("backend")] == "aws"
        assert env[env_var("queue_prefix")] == "stratoflow-full"
        assert env[env_var("home")] == LAMBDA_HOME
        for field in ("table_name", "results_bucket", "code_bucket", "runs_log_group", "region"):
            assert env_var(field) in env, (name, field)
        assert env["POWERTOOLS_SERVICE_NAME"] == name.replace("stratoflow-full", "stratoflow")
        assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Stratoflow/full"
        # Every STRATOFLOW_* variable is a setting, except the ECS dispatcher's own.
        own = set(ECS_ENV.values())
        for variable in env:
            if variable.startswith("STRATOFLOW_") and variable not in own:
                field = variable.removeprefix("STRATOFLOW_").lower()
                assert field in Settings.model_fields, variable


def test_the_dispatcher_environment_is_what_ecs_config_reads(
    full_template: Any, synthesized: Synthesized
):
    env = functions(full_template)["stratoflow-full-ecs-dispatcher"]["Environment"]["Variables"]
    assert set(ECS_ENV.values()) <= set(env)
    config = EcsConfig.from_env({k: str(v) if isinstance(v, str) else "x" for k, v in env.items()})
    assert config.container == "flow-run"
    assert config.assign_public_ip == "ENABLED"  # the stack's VPC has public subnets only
    ecs = synthesized.full.ecs
    assert env[ECS_ENV["cluster"]] == {
        "Fn::GetAtt": [logical_id(synthesized.full, ecs.cluster), "Arn"]
    }
    assert env[ECS_ENV["task_definition"]] == {
        "Ref": logical_id(synthesized.full, ecs.task_definition)
    }


def test_automations_environment(full_template: Any):
    env = functions(full_template)["stratoflow-full-automations"]["Environment"]["Variables"]
    assert env[env_var("webhook_allowed_hosts")] == "hooks.example.com"


def test_log_groups_have_retention(full_template: Any, synthesized: Synthesized):
    for name, function in functions(full_template).items():
        group_id = function["LoggingConfig"]["LogGroup"]["Ref"]
        group = full_template.to_json()["Resources"][group_id]["Properties"]
        assert group["LogGroupName"] == f"/aws/lambda/{name}"
        assert group["RetentionInDays"] == 30


def test_scheduler_runs_every_minute(full_template: Any, synthesized: Synthesized):
    rule = only(
        full_template,
        "AWS::Events::Rule",
        Match.object_like({"ScheduleExpression": Match.any_value()}),
    )
    assert rule["ScheduleExpression"] == "rate(1 minute)"
    scheduler = logical_id(synthesized.full, synthesized.full.functions.scheduler)
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": [scheduler, "Arn"]}


def test_automations_read_the_stream_with_partial_failures(
    full_template: Any, synthesized: Synthesized
):
    stack = synthesized.full
    mapping = only(
        full_template,
        "AWS::Lambda::EventSourceMapping",
        Match.object_like(
            {"FunctionName": {"Ref": logical_id(stack, stack.functions.automations)}}
        ),
    )
    assert mapping["EventSourceArn"] == {
        "Fn::GetAtt": [logical_id(stack, stack.state.table), "StreamArn"]
    }
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["MaximumRetryAttempts"] == 3
    assert mapping["MaximumRecordAgeInSeconds"] == 6 * 3600
    failures = logical_id(stack, stack.functions.automations_failures)
    assert mapping["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": [failures, "Arn"]}}
    }


def test_lambda_worker_consumes_lambda_pools_only(full_template: Any, synthesized: Synthesized):
    stack = synthesized.full
    mappings = resources_of(
        full_template,
        "AWS::Lambda::EventSourceMapping",
        Match.object_like(
            {"FunctionName": {"Ref": logical_id(stack, stack.functions.lambda_worker)}}
        ),
    )
    sources = [m["Properties"] for m in mappings.values()]
    [fast] = [q for q in stack.work_queues.queues if q.pool.name == "fast"]
    assert [s["EventSourceArn"] for s in sources] == [
        {"Fn::GetAtt": [logical_id(stack, fast.queue), "Arn"]}
    ]
    assert sources[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert sources[0]["BatchSize"] == 1
    assert sources[0]["ScalingConfig"] == {"MaximumConcurrency": 5}


def test_dispatcher_consumes_ecs_pools_only(full_template: Any, synthesized: Synthesized):
    stack = synthesized.full
    mappings = resources_of(
        full_template,
        "AWS::Lambda::EventSourceMapping",
        Match.object_like(
            {"FunctionName": {"Ref": logical_id(stack, stack.functions.ecs_dispatcher)}}
        ),
    )
    [gpu] = [q for q in stack.work_queues.queues if q.pool.name == "gpu"]
    [source] = [m["Properties"] for m in mappings.values()]
    assert source["EventSourceArn"] == {"Fn::GetAtt": [logical_id(stack, gpu.queue), "Arn"]}
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_task_stopped_rule_targets_on_task_stopped(full_template: Any, synthesized: Synthesized):
    stack = synthesized.full
    rule = only(
        full_template,
        "AWS::Events::Rule",
        Match.object_like({"EventPattern": Match.any_value()}),
    )
    assert rule["EventPattern"] == {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {
            "clusterArn": [{"Fn::GetAtt": [logical_id(stack, stack.ecs.cluster), "Arn"]}],
            "lastStatus": ["STOPPED"],
        },
    }
    stopped = logical_id(stack, stack.functions.ecs_task_stopped)
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": [stopped, "Arn"]}


def test_default_stack_has_no_worker_event_sources(default_template: Any):
    # The default pool is a "process" pool: on-prem pollers consume it, no Lambda does.
    mappings = resources_of(default_template, "AWS::Lambda::EventSourceMapping")
    assert len(mappings) == 1  # the automations stream
