"""The CDK stack deployed into the emulator, then used, as an operator would in AWS:

synthesize `infra/app.py` (stage `emu`; a process, a lambda and an ecs pool), prepare the
emulator as `cdk bootstrap` would, publish the assets, create the stack with
CloudFormation (minus what moto cannot create: `_stack_deploy.UNSUPPORTED`), configure
everything with `strato config from-stack`, then run one flow run through each kind of
worker against the created resources. The removed event source mappings are played by
the test (`_played_mappings`): it reads the source the mapping names (a queue, the table's
stream) and invokes the function's handler (the one its `Handler` names) with the
function's deployed environment.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import _stack_deploy as cfn
import boto3
import pytest
from _played_mappings import Installation, deployed_function, mapping_of, play_queue_mapping

from infra.constructs.result_keys import RESOURCE_TYPE as RESULT_KEY_RESOURCE
from infra.outputs import ON_PREM_POLICY_OUTPUT, ON_PREM_ROLE_OUTPUT, on_prem_policy_output
from stratoflow import runs
from stratoflow.backends.aws.clients import AwsClients, AwsConfig
from stratoflow.context import set_process_services
from stratoflow.deployments.deploy import deploy_project
from stratoflow.deployments.runs import run_deployment
from stratoflow.dev.event_sources import StreamSource
from stratoflow.emulator import emulator
from stratoflow.models import FlowRun
from stratoflow.platform import get_platform
from stratoflow.resources import STACK_OUTPUTS, ResourceNames, result_key_parameter_name
from stratoflow.settings import Settings, env_var, get_settings
from stratoflow.states import StateType

pytestmark = pytest.mark.slow

REGION = "us-east-1"
STAGE = "emu"
STACK = f"Stratoflow-{STAGE}"
POOLS = {"default": {}, "serverless": {"type": "lambda"}, "containers": {"type": "ecs"}}
"""One pool of each type, in the stack (CDK context) and in the project (stratoflow.yaml).
The ecs pool runs in the stack's own VPC (no `ecs_subnet_ids`)."""
DEPLOYMENTS = {"process": "default", "lambda": "serverless", "ecs": "containers"}
"""Worker kind → pool of its deployment (`greet-<kind>`)."""

FLOWS = """
from stratoflow import flow, get_run_logger


@flow
def greet(name: str) -> str:
    get_run_logger().info("greeting %s", name)
    return f"hello {name}"
"""


def project_config() -> str:
    deployments = [
        {
            "name": f"greet-{kind}",
            "entrypoint": "flows.py:greet",
            "parameters": {"name": kind},
            "work_pool": pool,
        }
        for kind, pool in DEPLOYMENTS.items()
    ]
    # JSON is YAML: stratoflow.yaml written from the same data as the CDK context.
    return json.dumps({"work_pools": POOLS, "deployments": deployments}, indent=2)


@dataclass
class Deployed(Installation):
    env: dict[str, str]
    """The environment of a process configured from `strato config from-stack`."""
    exports: dict[str, str]
    outputs: dict[str, str]
    pruned: cfn.Pruned
    adapted: list[str]
    stood_in: dict[str, str]
    """Logical id → type of the resources created through their API (cfn.STOOD_IN)."""
    bootstrap_version: str
    published: dict[str, str]
    """s3:// URL → SHA-256 (base64) of each published asset."""

    def strato(self, *args: str) -> subprocess.CompletedProcess[str]:
        return strato(self.env, *args)


def strato(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stratoflow.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def parse_exports(text: str) -> dict[str, str]:
    """`export NAME=value` lines, split as the shell that evals them would."""
    pairs = [shlex.split(line) for line in text.splitlines() if line.strip()]
    assert all(words[0] == "export" and len(words) == 2 for words in pairs), text
    return dict(words[1].split("=", 1) for words in pairs)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    assembly = cfn.synthesize(
        tmp_path_factory.mktemp("cdk.out"), {"stage": STAGE, "work_pools": json.dumps(POOLS)}
    )
    artifact = json.loads((assembly / "manifest.json").read_text())["artifacts"][STACK]
    template = json.loads((assembly / artifact["properties"]["templateFile"]).read_text())
    pruned = cfn.prune(template)
    adapted = cfn.give_containers_memory(pruned.template)
    adapted += cfn.spell_key_tags_for_moto(pruned.template)
    home = tmp_path_factory.mktemp("home")
    project = tmp_path_factory.mktemp("project")
    (project / "flows.py").write_text(FLOWS.lstrip())
    (project / "stratoflow.yaml").write_text(project_config())

    with emulator() as url, pytest.MonkeyPatch.context() as patch:
        session = boto3.Session(region_name=REGION)
        s3 = session.client("s3", endpoint_url=url)
        stood_in = cfn.stand_in(
            pruned.template, AwsClients(session, AwsConfig(region=REGION, endpoint_url=url))
        )
        version = cfn.bootstrap(session.client("ssm", endpoint_url=url), s3, artifact, REGION)
        published = cfn.publish_assets(s3, assembly, STACK, REGION)
        cloudformation = session.client("cloudformation", endpoint_url=url)
        bucket = cfn.assets_bucket(artifact, REGION)
        stack = cfn.create_stack(cloudformation, s3, STACK, pruned.template, bucket, REGION)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        physical = {
            r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
            for r in cloudformation.describe_stack_resources(StackName=STACK)["StackResources"]
        }

        for name in list(os.environ):
            if name.startswith(("STRATOFLOW_", "AWS_ENDPOINT_URL")):
                patch.delenv(name)
        base = {
            **os.environ,
            "STRATOFLOW_ENDPOINT_URL": url,  # the emulator: the one thing not from the stack
            "STRATOFLOW_HOME": str(home),
            "STRATOFLOW_LOG_TO_CONSOLE": "false",
            "AWS_DEFAULT_REGION": REGION,
        }
        found = strato(base, "config", "from-stack", STACK)
        assert found.returncode == 0, found.stderr
        exports = parse_exports(found.stdout)
        env = {**base, **exports}
        for name, value in env.items():
            patch.setenv(name, value)
        get_settings.cache_clear()
        previous = set_process_services(None)
        try:
            deploy_project(project)
            yield Deployed(
                endpoint=url,
                region=REGION,
                template=template,
                physical=physical,
                home=home,
                env=env,
                exports=exports,
                outputs=outputs,
                pruned=pruned,
                adapted=adapted,
                stood_in=stood_in,
                bootstrap_version=version,
                published=published,
            )
        finally:
            set_process_services(previous)
            get_settings.cache_clear()


def test_the_template_loses_exactly_what_moto_cannot_create(deployed: Deployed):
    removed: dict[str, int] = {}
    for kind in deployed.pruned.removed.values():
        removed[kind] = removed.get(kind, 0) + 1
    assert removed == {
        # One per DLQ (3 work queues', the task queue's) + automations failures + 5
        # functions (no Lambda task worker without `task_modules`).
        "AWS::CloudWatch::Alarm": 10,
        "AWS::Logs::MetricFilter": 7,  # 5 final states + 2 scheduler tick fields
        "AWS::S3::BucketPolicy": 4,  # code, results, access logs, the UI's CDN logs
        # 3 work queues and their DLQs, the task queue and its DLQ, automations failures
        "AWS::SQS::QueuePolicy": 9,
        "AWS::SNS::TopicPolicy": 1,
        "AWS::Lambda::EventSourceMapping": 3,  # table stream, lambda queue, ecs queue
        "AWS::CloudWatch::Dashboard": 1,  # shows the alarms (Fn::GetAtt Arn)
        # The web UI's edge and sign-in, and what refers to them: CloudFront's two
        # permissions to invoke the function, and the sign-in parameter.
        "AWS::Lambda::Url": 1,
        "AWS::CloudFront::Distribution": 1,
        "AWS::CloudFront::OriginAccessControl": 1,
        "AWS::CloudFront::CachePolicy": 1,
        "AWS::CloudFront::ResponseHeadersPolicy": 1,
        "AWS::Lambda::Permission": 2,
        "AWS::Cognito::UserPool": 1,
        "AWS::Cognito::UserPoolDomain": 1,
        "AWS::Cognito::UserPoolClient": 1,
        "AWS::Cognito::UserPoolGroup": 2,
        "AWS::SSM::Parameter": 1,
    }
    assert sorted(deployed.pruned.removed_outputs) == ["DashboardName", "UiUrl"]
    flow_run = logical_id(
        deployed, "AWS::ECS::TaskDefinition", Family=f"stratoflow-{STAGE}-flow-run"
    )
    key = logical_id(deployed, "AWS::KMS::Key")
    assert deployed.adapted == [f"{flow_run}/flow-run", key]
    created = set(deployed.physical)
    kept = set(deployed.pruned.template["Resources"])
    assert created == kept, "moto skipped a resource of the template it was given"
    assert created | set(deployed.pruned.removed) | set(deployed.stood_in) == set(
        deployed.template["Resources"]
    )
    # The result-signing keys: one per pool, the operators' and the background tasks',
    # each made by the custom resource's handler as a SecureString parameter.
    assert sorted(deployed.stood_in.values()) == [RESULT_KEY_RESOURCE] * (len(POOLS) + 2)
    described = deployed.client("ssm").describe_parameters()["Parameters"]
    keys = sorted(p["Name"] for p in described if "/result-keys/" in p["Name"])
    assert keys == sorted(
        result_key_parameter_name(f"stratoflow-{STAGE}", domain)
        for domain in ("_operators", "_tasks", *POOLS)
    )
    assert {p["Type"] for p in described if p["Name"] in keys} == {"SecureString"}
    # moto does not evaluate the template's Rules: the one CDK adds refuses bootstrap
    # versions it lists, which the one written to SSM is not among.
    rule = deployed.template["Rules"]["CheckBootstrapVersion"]["Assertions"]
    [refused] = [a["Assert"]["Fn::Not"][0]["Fn::Contains"][0] for a in rule]
    assert deployed.bootstrap_version not in refused


def test_every_function_runs_the_published_code_asset(deployed: Deployed):
    # moto does not refuse a function whose code object is missing (it creates it with
    # no code): the test checks that each function got the bytes cdk-assets published.
    client = deployed.client("lambda")
    functions = [
        deployed.physical[name]
        for name, r in deployed.template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function"
    ]
    # The five of Functions, the web UI's api, the result keys' handler and CDK's provider
    # framework (its own asset).
    assert len(functions) == 8
    for function in functions:
        config = client.get_function_configuration(FunctionName=function)
        assert config["CodeSize"] > 0, function
        assert config["CodeSha256"] in deployed.published.values(), function


def test_config_from_stack_takes_every_name_from_the_outputs(deployed: Deployed):
    exports, outputs, physical = deployed.exports, deployed.outputs, deployed.physical
    assert exports == {
        env_var("backend"): "aws",
        **{variable: outputs[output] for output, variable in STACK_OUTPUTS.items()},
    }
    kinds = {name: r["Type"] for name, r in deployed.template["Resources"].items()}

    def physical_ids(kind: str) -> set[str]:
        return {physical[name] for name, k in kinds.items() if k == kind and name in physical}

    assert exports[env_var("table_name")] in physical_ids("AWS::DynamoDB::Table")
    buckets = physical_ids("AWS::S3::Bucket")
    assert {exports[env_var("results_bucket")], exports[env_var("code_bucket")]} <= buckets
    assert exports[env_var("runs_log_group")] in physical_ids("AWS::Logs::LogGroup")
    prefix = exports[env_var("queue_prefix")]
    queue_names = {url.rsplit("/", 1)[1] for url in physical_ids("AWS::SQS::Queue")}
    for pool in POOLS:
        assert {f"{prefix}-{pool}-default", f"{prefix}-{pool}-default-dlq"} <= queue_names

    # Not one of the names `provision()` would have created locally, and nothing else
    # was created: the runs below used the stack's resources.
    defaults = ResourceNames.from_settings(Settings.model_construct())
    local = {
        defaults.table,
        defaults.results_bucket,
        defaults.code_bucket,
        defaults.runs_log_group,
        defaults.queue_prefix,
    }
    assert not local & set(exports.values())
    assert deployed.client("dynamodb").list_tables()["TableNames"] == [
        exports[env_var("table_name")]
    ]


def test_the_process_pool_has_its_on_prem_policy_output(deployed: Deployed):
    """One on-prem policy per process pool (docs/security.md, finding 3); no principal is
    given, so no role. The lambda and ecs pools have no on-prem policy."""
    found = deployed.outputs
    assert found[on_prem_policy_output("default")].endswith(
        ":policy/stratoflow-emu-on-prem-default"
    )
    on_prem = {name for name in found if name.startswith(ON_PREM_POLICY_OUTPUT)}
    assert on_prem == {on_prem_policy_output("default")}
    assert not any(name.startswith(ON_PREM_ROLE_OUTPUT) for name in found)


def completed(run_id: str, worker_log: str = "") -> FlowRun:
    run = runs.read_flow_run(run_id)
    assert run.state is not None
    assert run.state.type is StateType.COMPLETED, f"{run.state}\n{worker_log}"
    return run


def test_the_process_pool_through_an_on_prem_poller(deployed: Deployed):
    run = run_deployment("greet-process", timeout=0)
    worker = deployed.strato("worker", "start", "--pool", "default", "--name", "emu", "--once")
    assert worker.returncode == 0, worker.stderr
    done = completed(run.id, worker.stderr)
    assert runs.read_result(done) == "hello process"
    assert [e.message for e in runs.read_logs(run.id)].count("greeting process") == 1


def function_id(deployed: Deployed, function: str) -> str:
    return logical_id(
        deployed, "AWS::Lambda::Function", FunctionName=f"stratoflow-{STAGE}-{function}"
    )


def logical_id(deployed: Deployed, kind: str, **properties: Any) -> str:
    [found] = [
        name
        for name, r in deployed.template["Resources"].items()
        if r["Type"] == kind and all(r["Properties"].get(k) == v for k, v in properties.items())
    ]
    return found


def test_the_lambda_pool_through_the_lambda_worker(deployed: Deployed):
    run = run_deployment("greet-lambda", timeout=0)
    worker = function_id(deployed, "lambda-worker")
    assert play_queue_mapping(deployed, worker) == {"batchItemFailures": []}
    done = completed(run.id)
    assert runs.read_result(done) == "hello lambda"
    assert "greeting lambda" in [e.message for e in runs.read_logs(run.id)]


def test_the_ecs_pool_through_the_dispatcher_and_a_task(deployed: Deployed):
    run = run_deployment("greet-ecs", timeout=0)
    dispatcher = function_id(deployed, "ecs-dispatcher")
    assert play_queue_mapping(deployed, dispatcher) == {"batchItemFailures": []}
    claimed = runs.read_flow_run(run.id)
    assert claimed.state is not None
    assert claimed.state.type is StateType.PENDING
    assert claimed.infrastructure_id is not None

    ecs = deployed.client("ecs")
    cluster = deployed.outputs["EcsClusterArn"]
    [task] = ecs.describe_tasks(cluster=cluster, tasks=[claimed.infrastructure_id])["tasks"]
    definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])
    assert (
        task["taskDefinitionArn"]
        == deployed.physical[
            logical_id(deployed, "AWS::ECS::TaskDefinition", Family=f"stratoflow-{STAGE}-flow-run")
        ]
    )
    [container] = definition["taskDefinition"]["containerDefinitions"]
    [override] = task["overrides"]["containerOverrides"]
    assert override["name"] == container["name"]
    # What the container does: its image runs the command with the task definition's
    # environment (and the override's).
    environment = {e["name"]: e["value"] for e in container["environment"]}
    environment |= {e["name"]: e["value"] for e in override.get("environment", [])}
    assert override["command"][:3] == ["strato", "flow-run", "execute"]
    executed = strato(
        {
            **{k: v for k, v in deployed.env.items() if not k.startswith("STRATOFLOW_")},
            **environment,
            "STRATOFLOW_ENDPOINT_URL": deployed.endpoint,
            "STRATOFLOW_HOME": str(deployed.home / "ecs-task"),
        },
        *override["command"][1:],
    )
    assert executed.returncode == 0, executed.stderr
    done = completed(run.id)
    assert runs.read_result(done) == "hello ecs"
    assert "greeting ecs" in [e.message for e in runs.read_logs(run.id)]


def test_the_table_stream_through_the_automations_function(deployed: Deployed):
    """The third removed mapping: the table's stream (what the runs above wrote) read
    as `strato dev` reads it, delivered to the deployed automations function."""
    automations = function_id(deployed, "automations")
    mapping = mapping_of(deployed, automations)
    assert mapping.source_type == "AWS::DynamoDB::Table"
    assert mapping.report_failures
    with deployed_function(deployed, automations) as invoke:
        stream = StreamSource(
            get_platform(),
            lambda _name, event: invoke(event),
            max_retries=mapping.retries or 0,
            batch_size=mapping.batch_size,
        )
        table = deployed.client("dynamodb").describe_table(
            TableName=deployed.physical[mapping.source]
        )["Table"]
        assert stream.stream_arn == table["LatestStreamArn"]
        delivered = stream.poll()
    assert delivered > 0
    assert stream.dropped == []
